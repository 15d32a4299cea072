"""The exactly-once protocol, on fakes that follow DynamoDB's and SQS's documented semantics.

A property test drives several real ``DispatchWorker`` loops, one AWS call at a time, over
interleavings, crashes (SIGKILL before or after a call takes effect), restarts, duplicate
and redelivered messages, failed calls, calls that took effect but lost their answer, calls
botocore resent after they landed, ``TransactionConflict`` and unprocessed batch items, with
the worker settings and the queue's ``maxReceiveCount`` as deployed. After the faults stop,
the workers drain the queue; then every valid request is in exactly one window record, no
valid message is dead-lettered, and the queue is empty.

Then the three double-dispatch paths found in the earlier protocol, each as an example.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from botocore.exceptions import ReadTimeoutError
from cfnlint.decode import decode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.contracts.dispatch_order import order_body
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.contracts.samples import sample_request
from storeops.directory import DEPOTS, STORE_DIRECTORY_KEY
from storeops.dispatch.claims import ClaimStore, Window
from storeops.dispatch.config import MAX_DELAY_SECONDS, REDRIVE_MARGIN, WorkerConfig, timing_problems
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loop import StopFlag, run_dispatch_loop
from storeops.dispatch.messages import split_message
from storeops.dispatch.worker import MAX_GENERATIONS, DispatchWorker
from storeops.ledger import LEDGER_PREFIX, decode_rows
from storeops.retry import RetryPolicy
from storeops.sqs import SqsBatcher
from tests.conftest import ROOT, examples
from tests.fakes.aws import DynamoState, FakeDynamoDB, FakeS3, FakeSqs, S3State, SqsState
from tests.fakes.scheduler import Scheduler

FAULT_FATES = ("fail", "lost", "twice", "conflict", "partial", "kill_before", "kill_after")
CLOCK_STEPS = (1, 2, 5, 10)  # time passing while windows work
STALLS = (30, 60, 95, 121, 300)  # a pause that long in the middle of a window is a fault (a stalled worker)
EXAMPLES = int(os.environ.get("STOREOPS_PROTOCOL_EXAMPLES", str(examples(120))))
# Any REDRIVE_MARGIN - 1 faults, anywhere: the argument says SQS redrives a valid message only after
# REDRIVE_MARGIN receives in a row that each ended without a decision (ARCHITECTURE.md).
FAULT_BUDGET = int(os.environ.get("STOREOPS_PROTOCOL_FAULTS", str(REDRIVE_MARGIN - 1)))
QUIESCENCE_ROUNDS = 4000
T = TypeVar("T")


@functools.cache  # read once per session: every simulation builds its world from it (the parse was 2/3 of the time)
def deployed_queue() -> tuple[int, int]:
    """The dispatch queue's visibility timeout and maxReceiveCount as the template deploys them."""
    template, errors = decode(str(ROOT / "deployments" / "template.yaml"))
    assert not errors
    parameters = template["Parameters"]
    return int(parameters["DispatchVisibilitySeconds"]["Default"]), int(
        parameters["DispatchMaxReceiveCount"]["Default"]
    )


class World:
    """One queue, one claims table, one lake, one virtual clock; workers share them."""

    def __init__(self, visibility: int, max_receive_count: int) -> None:
        self.now = 1_800_000_000.0
        self.sqs = SqsState(self.clock, max_receive_count)
        self.dynamo = DynamoState()
        self.s3 = S3State()
        stores = [
            {"store_id": f"S{i:04d}", "region": region, "lat": lat, "lon": lon}
            for i, (region, (lat, lon)) in enumerate(DEPOTS.items(), start=1)
        ]
        self.s3.objects[STORE_DIRECTORY_KEY] = json.dumps(stores).encode()
        self.visibility = visibility
        self.max_receive_count = max_receive_count

    def clock(self) -> float:
        return self.now

    def departure(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def worker(self, name: str, calls: Scheduler | None = None) -> DispatchWorker:
        scheduler = calls or Scheduler()
        sleep = scheduler.sleeper(name) if calls else (lambda _s: None)
        config = WorkerConfig(
            queue_url=self.sqs.queue_url,
            dead_letter_queue_url=self.sqs.dlq_url,
            bucket="lake",
            claims_table="claims",
            window_messages=6,
            window_requests=9,
            visibility_seconds=self.visibility,
            max_receive_count=self.max_receive_count,
            worker_id=name,
        )
        sqs, dynamodb, s3 = (
            FakeSqs(self.sqs, calls, name),
            FakeDynamoDB(self.dynamo, calls, name),
            FakeS3(self.s3, calls, name),
        )
        retry = RetryPolicy(max_attempts=3, sleep=sleep)
        return DispatchWorker(
            sqs,
            dynamodb,
            s3,
            config,
            clock=self.clock,
            business_clock=self.departure,
            batcher=SqsBatcher(sqs, retry=retry, max_workers=1),
            claims=ClaimStore(dynamodb, "claims", config.lease_seconds, self.clock, retry=retry),
        )

    def send(self, requests: list[DispatchRequest], choose: Choices | None = None) -> None:
        """Each request alone, or (with ``choose``) runs of 1 to 5 packed into one order message."""
        start = 0
        while start < len(requests):
            size = choose.integer(1, 5) if choose else 1
            bodies = [r.model_dump_json() for r in requests[start : start + size]]
            self.sqs.enqueue(self.sqs.queue_url, order_body(bodies))
            start += size

    def dispatched(self) -> Counter[str]:
        """How many dispatch rows each shortage has across every window record."""
        counts: Counter[str] = Counter()
        for key, body in self.s3.objects.items():
            if key.startswith(LEDGER_PREFIX):
                counts.update(r.shortage_id for r in decode_rows(body) if r.record_type == "dispatch")
        return counts

    def dead_lettered_requests(self) -> list[str]:
        """Dead letters that are valid requests (the invalid ones belong there)."""
        valid = []
        for message in self.sqs.dead_letters:
            try:
                DispatchRequest.model_validate_json(message.body)
            except ValueError:
                continue
            valid.append(message.body)
        return valid


def requests(count: int) -> list[DispatchRequest]:
    return [
        sample_request(f"S{i % len(DEPOTS) + 1:04d}", f"P{i + 1:04d}", 6 * (1 + i % 4), reading_event_id=f"r{i}")
        for i in range(count)
    ]


def test_the_deployed_settings_satisfy_the_timing_relation() -> None:
    visibility, max_receive_count = deployed_queue()
    config = WorkerConfig(queue_url="q", dead_letter_queue_url="d", bucket="b", claims_table="c")
    assert config.visibility_seconds == visibility  # the worker receives with the queue's own timeout
    problems = timing_problems(
        visibility, config.lease_seconds, config.window_seconds, config.wait_seconds, max_receive_count
    )
    assert problems == []
    assert config.recycle_at < max_receive_count


def test_a_short_lease_that_outlives_the_visibility_is_refused() -> None:
    assert timing_problems(120, 300, 10, 20, 5)  # the earlier stack: 300 s lease, 120 s visibility


class Choices:
    """Where a simulation's choices come from: hypothesis (shrinkable) or a seeded random generator."""

    def __init__(self, data: st.DataObject | None = None, rng: random.Random | None = None) -> None:
        self.data = data
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        if self.data is not None:
            return int(self.data.draw(st.integers(low, high)))
        assert self.rng is not None
        return self.rng.randint(low, high)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]


class Simulation:
    """Three workers, faults, restarts and duplicates, chosen step by step; then a drain without faults."""

    def __init__(self, choose: Choices, fault_budget: int, calm: int) -> None:
        self.choose, self.fault_budget, self.calm = choose, fault_budget, calm
        self.world = world = World(*deployed_queue())
        self.sent = sent = requests(choose.integer(1, 30))
        world.send(sent, choose)  # singles and orders (several requests in one message)
        world.send([sent[choose.integer(0, len(sent) - 1)] for _ in range(choose.integer(0, 6))], choose)
        for _ in range(choose.integer(0, 2)):
            world.sqs.enqueue(world.sqs.queue_url, "{not json")
        if choose.integer(0, 1):  # an order with one invalid request: that one is dead-lettered, the other dispatched
            duplicate = sent[choose.integer(0, len(sent) - 1)]
            world.sqs.enqueue(world.sqs.queue_url, order_body([duplicate.model_dump_json(), '{"shortage_id": 7}']))
        self.scheduler = Scheduler()
        self.generation = Counter[str]()
        self.faults = 0

    def start(self, base: str) -> None:
        self.generation[base] += 1
        name = f"{base}.{self.generation[base]}"  # a restarted process is a new worker
        worker, sleep = self.world.worker(name, self.scheduler), self.scheduler.sleeper(name)
        self.scheduler.start(name, lambda: run_dispatch_loop(worker, StopFlag(), until_empty=True, sleep=sleep))

    def restartable(self) -> list[str]:
        alive = {name.split(".")[0] for name in self.scheduler.runnable()}
        return sorted({name.split(".")[0] for name in self.scheduler.gone} - alive)

    def step(self) -> None:
        """One chosen action: a worker's step (fine or failing), the clock moving, a restart, a late duplicate."""
        choose, runnable = self.choose, self.scheduler.runnable()
        action = choose.integer(0, 99)
        if action < self.calm and runnable:
            self.scheduler.step(choose.pick(runnable), "ok")
        elif action < 88 and runnable and self.faults < self.fault_budget:
            self.faults += 1
            self.scheduler.step(choose.pick(runnable), choose.pick(FAULT_FATES))
        elif action < 94:
            self.advance_clock(runnable)
        elif action < 97:
            if gone := self.restartable():
                self.start(choose.pick(gone))
        else:
            self.world.send([choose.pick(self.sent)])  # a duplicate arrives late

    def advance_clock(self, runnable: list[str]) -> None:
        step = self.choose.pick(CLOCK_STEPS + STALLS)
        if step in STALLS and self.world.sqs.undecided(set(runnable)):
            if self.faults >= self.fault_budget:
                return
            self.faults += 1  # the workers mid-window stall for this long
        self.world.now += step

    def drain(self) -> None:
        """Faults stop: restart what died, and let the workers drain the queue in virtual time."""
        for base in self.restartable():
            self.start(base)
        for _round in range(QUIESCENCE_ROUNDS):
            runnable = self.scheduler.runnable()
            if not runnable:
                if not self.world.sqs.messages:
                    return
                self.start("a")  # every worker drained while late messages were still invisible
                continue
            for name in runnable:
                self.scheduler.step(name, "ok")
            self.world.now += 1 if self.world.sqs.undecided(set(runnable)) else 10
        pytest.fail(f"not drained after {QUIESCENCE_ROUNDS} rounds: {len(self.world.sqs.messages)} messages left")

    def end(self) -> None:
        for name in self.scheduler.runnable():  # end every thread still waiting (a failed example)
            self.scheduler.step(name, "kill_before")


def simulate(
    choose: Choices, fault_budget: int = FAULT_BUDGET, max_steps: int = 250, calm: int = 70
) -> tuple[World, list[DispatchRequest]]:
    """Three workers, faults, restarts and duplicates, chosen step by step; then a drain without faults."""
    simulation = Simulation(choose, fault_budget, calm)
    try:
        for base in ("a", "b", "c"):
            simulation.start(base)
        for _ in range(choose.integer(0, max_steps)):
            simulation.step()
        simulation.drain()
    finally:
        simulation.end()
    return simulation.world, simulation.sent


def assert_exactly_once(world: World, sent: list[DispatchRequest]) -> None:
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent}), "each valid request in exactly one record"
    assert world.dead_lettered_requests() == [], "no valid request dead-lettered"
    assert world.sqs.messages == {}, "the queue drained"


@given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_valid_request_is_dispatched_exactly_once_under_any_interleaving(data: st.DataObject) -> None:
    assert_exactly_once(*simulate(Choices(data=data)))


def test_many_random_schedules_without_shrinking() -> None:
    """Hypothesis favours small examples; seeded random schedules explore long ones cheaply."""
    for seed in range(int(os.environ.get("STOREOPS_PROTOCOL_SCHEDULES", str(examples(150))))):
        world, sent = simulate(Choices(rng=random.Random(seed)))
        try:
            assert_exactly_once(world, sent)
        except AssertionError as exc:
            raise AssertionError(f"schedule seed {seed}: {exc}") from None


# -- the three double-dispatch paths of the earlier protocol, as examples ------------------------
def drain(world: World, worker: DispatchWorker) -> None:
    """One worker alone: an empty long poll lets its wait pass, so deferred messages come back."""

    def wait(seconds: float) -> None:
        world.now += seconds

    world.sqs.idle_wait = wait
    run_dispatch_loop(worker, StopFlag(), until_empty=True, sleep=wait, max_seconds=60)


def test_a_redelivered_copy_to_the_same_long_running_worker_is_not_dispatched_again() -> None:
    world = World(*deployed_queue())
    (request,) = requests(1)
    worker = world.worker("w")
    worker.claims.mark_dispatched = lambda ids, window: len(ids)  # type: ignore[method-assign]  # marking fails
    world.send([request])
    drain(world, worker)
    world.send([request])  # the same request again, to the same worker, in a later window
    drain(world, worker)
    world.now += 600
    drain(world, worker)
    assert world.dispatched() == Counter({request.shortage_id: 1})


def test_what_no_truck_can_take_is_carried_to_a_later_window_never_lost_or_doubled() -> None:
    world = World(*deployed_queue())
    sent = requests(10)  # two for each depot
    world.send(sent)
    short = world.worker("short")
    short.config = replace(short.config, fleet=Fleet(trucks_at_depot={"north": 0, "east": 0}))
    dispatched = carried = 0
    while (report := short.process(short.gather(until_empty=True))).received:  # a drain would wait for them
        dispatched, carried = dispatched + report.dispatched, carried + report.carried
    assert (dispatched, carried) == (6, 4)
    north_east = {world_store(r.store_id) for r in sent} & {"north", "east"}
    carried = [r.shortage_id for r in sent if world_store(r.store_id) in north_east]
    assert set(world.dispatched()) == {r.shortage_id for r in sent} - set(carried)  # the rest went
    assert world.sqs.messages  # the carried requests wait in the queue, delayed
    world.now += MAX_DELAY_SECONDS + 1
    drain(world, world.worker("full"))  # trucks again: the next window takes them
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent})
    assert world.dead_lettered_requests() == []
    assert world.sqs.messages == {}


def test_what_no_truck_takes_window_after_window_is_dead_lettered_with_the_fix() -> None:
    world = World(*deployed_queue())
    sent = requests(5)  # one for each depot
    world.send(sent)
    worker = world.worker("none")
    worker.config = replace(worker.config, fleet=Fleet(trucks_at_depot=dict.fromkeys(DEPOTS, 0)))
    carried = 0
    for _ in range(MAX_GENERATIONS + 2):  # the first window and each carry
        while (report := worker.process(worker.gather(until_empty=True))).received:
            carried += report.carried
        world.now += MAX_DELAY_SECONDS + 1
    assert carried == len(sent) * MAX_GENERATIONS
    assert sorted(world.dead_lettered_requests()) == sorted(r.model_dump_json() for r in sent)  # none lost
    assert not world.dispatched()
    assert world.sqs.messages == {}
    reasons = [str(m.attributes.get("failure_reason", "")) for m in world.sqs.dead_letters]
    assert len(reasons) == len(sent)
    assert all("add trucks at its depot" in r for r in reasons), reasons


def world_store(store_id: str) -> str:
    """The region of one of World's stores (S0001... in DEPOTS' order)."""
    return list(DEPOTS)[int(store_id[1:]) - 1]


def test_a_duplicate_in_the_next_window_finds_the_claim_marked_before_the_delete() -> None:
    world = World(*deployed_queue())
    (request,) = requests(1)
    worker = world.worker("w")
    world.send([request, request])
    worker.config = replace(worker.config, window_messages=1)  # one copy per window
    drain(world, worker)
    world.now += 600
    drain(world, worker)
    assert world.dispatched() == Counter({request.shortage_id: 1})
    assert world.sqs.messages == {}


def test_a_failed_record_write_never_rewrites_loads_on_retry() -> None:
    world = World(*deployed_queue())
    sent = requests(8)
    world.send(sent)
    worker = world.worker("w")
    s3 = worker.s3
    original = s3.put_object
    calls = {"n": 0}

    def put_then_lose_answer(**kwargs: object) -> object:
        result = original(**kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise ReadTimeoutError(endpoint_url="fake://s3")  # it landed; its answer was lost
        return result

    s3.put_object = put_then_lose_answer  # type: ignore[method-assign]
    with pytest.raises(ReadTimeoutError):
        worker.process(worker.gather(until_empty=True))  # the window fences itself, finds its record
    (first,) = [k for k in world.s3.objects if k.startswith(LEDGER_PREFIX)]
    recorded = world.s3.objects[first]
    world.now += 600
    drain(world, world.worker("w2"))
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent})
    assert world.s3.objects[first] == recorded  # written once, never rewritten


# -- orders: one message carrying many requests ----------------------------------------------------


def test_an_order_whose_request_is_held_elsewhere_sends_back_only_that_request() -> None:
    world = World(*deployed_queue())
    sent = requests(5)
    other = world.worker("other")
    held = other.claims.claim([sent[2].shortage_id], window=_window("elsewhere"))  # a live window holds one
    assert held.won == {sent[2].shortage_id}
    world.sqs.enqueue(world.sqs.queue_url, order_body([r.model_dump_json() for r in sent]))
    worker = world.worker("w")
    report = worker.process(worker.gather(until_empty=True))
    assert (report.received, report.requests, report.dispatched, report.held_elsewhere) == (1, 5, 4, 1)
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent if r is not sent[2]})
    (back,) = world.sqs.messages.values()  # the order is gone; the held request came back alone, delayed
    assert DispatchRequest.model_validate_json(back.body).shortage_id == sent[2].shortage_id
    assert back.visible_at > world.now


def test_an_invalid_request_in_an_order_is_dead_lettered_alone() -> None:
    world = World(*deployed_queue())
    sent = requests(3)
    bodies = [r.model_dump_json() for r in sent]
    world.sqs.enqueue(world.sqs.queue_url, order_body([bodies[0], '{"shortage_id": "nope"}', *bodies[1:]]))
    world.sqs.enqueue(world.sqs.queue_url, '{"schema_version": 1, "message_type": "dispatch_order", "requests": []}')
    worker = world.worker("w")
    drain(world, worker)
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent})
    assert sorted(m.body for m in world.sqs.dead_letters) == sorted(
        ['{"shortage_id":"nope"}', '{"schema_version": 1, "message_type": "dispatch_order", "requests": []}']
    )
    assert world.sqs.messages == {}


def _window(name: str) -> Window:
    return Window(name, name, f"dispatch-ledger/dt=2027-01-15/window-{name}.json")


def test_a_window_of_orders_stays_near_its_request_budget() -> None:
    world = World(*deployed_queue())
    sent = requests(30)
    for start in range(0, 30, 3):  # ten orders of three requests
        world.sqs.enqueue(world.sqs.queue_url, order_body([r.model_dump_json() for r in sent[start : start + 3]]))
    worker = world.worker("w")
    worker.config = replace(worker.config, window_messages=500, window_requests=10)
    held = worker.gather(until_empty=True)
    assert sum(len(split_message(m)) for m in held) <= 10 + 3  # overshoots by at most one order
    drain(world, worker)
    assert world.dispatched() == Counter({r.shortage_id: 1 for r in sent})


def test_claims_and_marks_sent_several_calls_at_a_time_settle_each_shortage_as_one_at_a_time() -> None:
    ids = [f"s-{n:04d}" for n in range(250)]  # three claim transactions, ten mark calls
    outcomes = []
    for threads in (1, 4):
        state = DynamoState()
        held = ClaimStore(FakeDynamoDB(state), "claims", 90, lambda: 1_000.0)
        held.claim(ids[:7], _window("other"))  # held by a live window
        store = ClaimStore(FakeDynamoDB(state), "claims", 90, lambda: 1_000.0, threads=threads)
        outcome = store.claim(ids, _window("mine"))
        assert store.mark_dispatched(sorted(outcome.won), _window("mine")) == 0
        outcomes.append((sorted(outcome.won), sorted(outcome.existing), sorted(outcome.unresolved)))
        assert {shortage_id: item["state"]["S"] for shortage_id, item in state.items.items()} == {
            shortage_id: "claimed" if shortage_id in ids[:7] else "dispatched" for shortage_id in ids
        }
    assert outcomes[0] == outcomes[1] == (ids[7:], ids[:7], [])
