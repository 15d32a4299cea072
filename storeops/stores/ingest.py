"""StoreApp runs: simulate ticks, validate, encode, pack and send; backfill history.

Plain functions over injected clients, wrapped by the ``store-data`` Prefect flow's tasks.
A run works through the stores a chunk at a time (``storeops.stores.simulation.ChunkLayout``):
load the chunk's state, take its readings, send them, save it. Memory grows with a chunk, not
with the catalog. The state persists in the data-lake bucket under
``simulator/<S>x<P>-seed<N>/``: one object per chunk (``chunk-<k>.npz``: its stock, clock and
the truck stops it applied) and a small ``manifest.json`` (the layout, the latest reading, the
window records every chunk has applied). Every object is written with a conditional PUT, so a
scheduled run continues where the previous one stopped and two concurrent runs cannot
silently overwrite each other.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from botocore.exceptions import ClientError

from storeops.aws_errors import is_conditional_conflict, is_not_found, is_precondition_failed
from storeops.calendar import TIMEZONE, local_date
from storeops.contracts.reading import identity_fields_valid, validate_batch
from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.encoding import EncodedBatch, ReadingEncoder, random_event_ids
from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, FirehoseSender, PendingSend, SendResult, pack_stream
from storeops.stores.reference import shelf_prices
from storeops.stores.simulation import (
    CHUNK_PAIRS,
    Arrivals,
    ChunkLayout,
    DeliveryMemory,
    SimulationState,
    Tick,
    advance_to,
    initial_state,
    restock,
    stores_per_chunk,
)
from storeops.stores.truth import truth_lines

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SIMULATOR_PREFIX = "simulator/"
INVENTORY_PREFIX = "inventory/"
MANIFEST_FORMAT = 1

APPROX_LINE_BYTES = 300  # a reading's NDJSON line, to size chunks near the raw chunk bytes
RESTOCK_HOUR = 6  # history (backfill) has no trucks: shelves are filled to capacity at 06:00 local each day

Progress = Callable[[int, int], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationConfig:
    """What identifies one simulated retailer; each has its own persisted state."""

    stores: int
    products: int
    seed: int = 7

    @property
    def prefix(self) -> str:
        """Where its state objects are."""
        return f"{SIMULATOR_PREFIX}{self.stores}x{self.products}-seed{self.seed}/"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}manifest.json"

    def chunk_key(self, index: int) -> str:
        return f"{self.prefix}chunk-{index:05d}.npz"

    @property
    def legacy_state_key(self) -> str:
        """The single object earlier versions kept the whole state in (ignored now)."""
        return f"{self.prefix}state.npz"


@dataclass
class SimulationManifest:
    """The simulation as a whole: its layout, how far its chunks got, and which window records every
    chunk has applied (``storeops.stores.deliveries.LedgerDeliveries`` skips those)."""

    stores: int
    products: int
    seed: int
    chunk_stores: int
    sim_clock: datetime | None = None  # the furthest any chunk's clock got
    ticks: int = 0  # the most readings any chunk took
    last_observed_at: datetime | None = None  # the latest reading of any chunk
    deliveries: DeliveryMemory = field(default_factory=lambda: DeliveryMemory())

    @classmethod
    def new(cls, catalog: Catalog, chunk_pairs: int = CHUNK_PAIRS) -> SimulationManifest:
        n_stores, n_products = catalog.shape
        return cls(n_stores, n_products, catalog.seed, min(n_stores, stores_per_chunk(n_products, chunk_pairs)))

    @property
    def layout(self) -> ChunkLayout:
        return ChunkLayout(self.stores, self.products, self.chunk_stores)

    def advanced(self, state: SimulationState) -> None:
        """A chunk was saved: the simulation got at least as far as it did."""
        self.ticks = max(self.ticks, state.ticks)
        self.sim_clock = max(self.sim_clock, state.sim_clock) if self.sim_clock else state.sim_clock
        if state.last_observed_at is not None:
            last = self.last_observed_at
            self.last_observed_at = max(last, state.last_observed_at) if last else state.last_observed_at

    def restart(self, start: datetime) -> None:
        """Every chunk starts again at ``start`` (a backfill)."""
        self.sim_clock, self.ticks, self.last_observed_at, self.deliveries = start, 0, None, DeliveryMemory()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "stores": self.stores,
                "products": self.products,
                "seed": self.seed,
                "chunk_stores": self.chunk_stores,
                "sim_clock": self.sim_clock.isoformat() if self.sim_clock else None,
                "ticks": self.ticks,
                "last_observed_at": self.last_observed_at.isoformat() if self.last_observed_at else None,
                "deliveries": self.deliveries.to_json(),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SimulationManifest:
        meta = json.loads(data)
        if meta.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"simulation manifest format {meta.get('format')} is not {MANIFEST_FORMAT}")
        clock, last = meta.get("sim_clock"), meta.get("last_observed_at")
        return cls(
            stores=int(meta["stores"]),
            products=int(meta["products"]),
            seed=int(meta["seed"]),
            chunk_stores=int(meta["chunk_stores"]),
            sim_clock=datetime.fromisoformat(clock) if clock else None,
            ticks=int(meta["ticks"]),
            last_observed_at=datetime.fromisoformat(last) if last else None,
            deliveries=DeliveryMemory.from_json(meta.get("deliveries") or {}),
        )


class ChunkBackend(Protocol):
    """Where a simulation's chunk states and manifest are kept between readings."""

    def load(self, index: int) -> SimulationState | None:
        """Chunk ``index`` as last saved, or None if it never was."""

    def save(self, state: SimulationState) -> None:
        """Keep a chunk's state (refused if someone else saved it since it was loaded)."""

    def replace(self, index: int) -> None:
        """The next save of chunk ``index`` replaces whatever is kept (without reading it)."""

    def save_manifest(self, manifest: SimulationManifest) -> None:
        """Keep the manifest (refused if someone else saved it since it was loaded)."""


class MemoryChunks:
    """Chunk states kept in this process (scenarios, tests, small catalogs): the same objects come back."""

    def __init__(self) -> None:
        self.states: dict[int, SimulationState] = {}

    def load(self, index: int) -> SimulationState | None:
        return self.states.get(index)

    def save(self, state: SimulationState) -> None:
        self.states[state.chunk] = state

    def replace(self, index: int) -> None:
        self.states.pop(index, None)

    def save_manifest(self, manifest: SimulationManifest) -> None:
        return None


class SimulationStore:
    """The simulation's state objects in the data lake; every write is conditional, so a concurrent
    writer is detected (``IfMatch`` the version read, or ``IfNoneMatch`` for a new object)."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        """An object's bytes and ETag, or (None, None) if there is none."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc):
                return None, None
            raise
        return response["Body"].read(), response.get("ETag")

    def head(self, key: str) -> str | None:
        """An object's ETag, or None if there is none."""
        try:
            return str(self.s3.head_object(Bucket=self.bucket, Key=key).get("ETag", ""))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def put(self, key: str, body: bytes, expected_etag: str | None) -> str:
        """Write ``key`` only if nobody else wrote it since ``expected_etag`` was read (None: only if new)."""
        try:
            if expected_etag:
                response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfMatch=expected_etag)
            else:
                response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if is_precondition_failed(exc) or is_conditional_conflict(exc):
                raise StoreOpsError(
                    f"another run changed the simulation state {key} during this run",
                    hint="run one store-data flow at a time per simulation (the deployment's concurrency limit is 1)",
                ) from None
            raise
        return str(response.get("ETag", ""))

    def open(self, config: SimulationConfig, now: datetime, chunk_pairs: int = CHUNK_PAIRS) -> Simulation:
        """The simulation to continue (its manifest; chunks load one at a time as a run reaches them),
        or a new one, in chunks of ``chunk_pairs`` store-products: a chunk never saved starts an hour
        before ``now`` (so its first reading reports an hour of sales). A saved simulation keeps the
        layout it was started with."""
        catalog = build_catalog(config.stores, config.products, config.seed)
        chunks = LakeChunks(self, config, catalog)
        manifest = chunks.load_manifest()
        if manifest is None:
            manifest = SimulationManifest.new(catalog, chunk_pairs)
            if self.head(config.legacy_state_key) is not None:
                logger.warning(
                    "ignoring %s, the whole-catalog state of an earlier version: this simulation starts anew, "
                    "a chunk of %d stores at a time",
                    config.legacy_state_key,
                    manifest.chunk_stores,
                )
        elif (manifest.stores, manifest.products, manifest.seed) != (config.stores, config.products, config.seed):
            raise StoreOpsError(
                f"the manifest {config.manifest_key} describes {manifest.stores} x {manifest.products} "
                f"(seed {manifest.seed}), expected {config.stores} x {config.products} (seed {config.seed})"
            )
        return Simulation(catalog, manifest, chunks, start=now - timedelta(hours=1), name=config.prefix)


class LakeChunks:
    """One simulation's objects in the lake, remembering the version of each it read or wrote."""

    def __init__(self, store: SimulationStore, config: SimulationConfig, catalog: Catalog) -> None:
        self.store = store
        self.config = config
        self.catalog = catalog
        self.etags: dict[str, str | None] = {}

    def load_manifest(self) -> SimulationManifest | None:
        key = self.config.manifest_key
        data, self.etags[key] = self.store.get(key)
        return SimulationManifest.from_bytes(data) if data is not None else None

    def save_manifest(self, manifest: SimulationManifest) -> None:
        key = self.config.manifest_key
        self.etags[key] = self.store.put(key, manifest.to_bytes(), self.etags.get(key))

    def load(self, index: int) -> SimulationState | None:
        key = self.config.chunk_key(index)
        data, self.etags[key] = self.store.get(key)
        return SimulationState.from_bytes(data, self.catalog) if data is not None else None

    def save(self, state: SimulationState) -> None:
        key = self.config.chunk_key(state.chunk)
        self.etags[key] = self.store.put(key, state.to_bytes(), self.etags.get(key))

    def replace(self, index: int) -> None:
        key = self.config.chunk_key(index)
        self.etags[key] = self.store.head(key)


@dataclass
class Simulation:
    """A simulated retailer: its catalog, its manifest, and its chunks' states (loaded one at a time)."""

    catalog: Catalog
    manifest: SimulationManifest
    chunks: ChunkBackend
    start: datetime  # where a chunk never saved starts
    name: str = "in memory"

    @classmethod
    def in_memory(cls, catalog: Catalog, start: datetime, chunk_pairs: int = CHUNK_PAIRS) -> Simulation:
        """A new simulation whose chunks stay in this process (it holds every store's state)."""
        return cls(catalog, SimulationManifest.new(catalog, chunk_pairs), MemoryChunks(), start.astimezone(UTC))

    @classmethod
    def of_state(cls, catalog: Catalog, state: SimulationState) -> Simulation:
        """The whole catalog as the one chunk ``state`` (made by ``initial_state(catalog, start)``)."""
        if state.shape != catalog.shape or state.first_store != 0 or state.chunk != 0:
            raise ValueError(f"a state of {state.shape} from store {state.first_store} is not the whole catalog")
        manifest = SimulationManifest(*catalog.shape, catalog.seed, catalog.shape[0])
        manifest.advanced(state)
        chunks = MemoryChunks()
        chunks.save(state)
        return cls(catalog, manifest, chunks, state.sim_clock)

    @property
    def layout(self) -> ChunkLayout:
        return self.manifest.layout

    def load(self, index: int) -> SimulationState:
        """Chunk ``index``: as saved, or new (starting at ``start``)."""
        first, stop = self.layout.bounds(index)
        state = self.chunks.load(index)
        if state is None:
            return initial_state(self.catalog, self.start, chunk=index, stores=(first, stop))
        if (state.chunk, state.first_store, state.stop_store) != (index, first, stop):
            raise StoreOpsError(
                f"the saved chunk {index} of {self.name} holds stores [{state.first_store}, {state.stop_store}), "
                f"its manifest says [{first}, {stop})"
            )
        return state

    def save(self, state: SimulationState) -> None:
        self.chunks.save(state)
        self.manifest.advanced(state)

    def save_manifest(self) -> None:
        self.chunks.save_manifest(self.manifest)

    def restart(self, start: datetime) -> None:
        """Start every chunk again at ``start`` (their saved states are replaced as they are saved)."""
        self.start = start.astimezone(UTC)
        self.manifest.restart(self.start)


def open_simulation(
    store: SimulationStore, config: SimulationConfig, now: datetime, chunk_pairs: int = CHUNK_PAIRS
) -> Simulation:
    """The simulation to continue, or a new one (see ``SimulationStore.open``)."""
    return store.open(config, now, chunk_pairs)


@dataclass
class IngestReport:
    """Counts and timings of one run (the flow's artifact and the CLI's JSON)."""

    stores: int
    products: int
    ticks: int = 0
    rows_generated: int = 0
    rows_sent: int = 0
    rows_rejected: int = 0
    rows_failed: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    firehose_records: int = 0
    firehose_calls: int = 0
    retried_records: int = 0
    billed_bytes: int = 0
    payload_bytes: int = 0
    raw_bytes: int = 0
    backfill_rows: int = 0
    backfill_objects: int = 0
    units_sold: int = 0
    units_lost: int = 0  # the simulator's view (never in a reading): demand an empty shelf turned away
    units_expired: int = 0
    units_delivered: int = 0
    units_refused: int = 0  # delivered units that did not fit on the shelf
    hours_simulated: float = 0.0
    seconds: float = 0.0
    sim_clock: str = ""

    def add_chunk(self, reading: _ChunkReading, sent: SendResult) -> None:
        """Count one chunk's reading: what was simulated, rejected, sent (readings and hours are counted
        once per reading time, by the run)."""
        self.rows_generated += reading.rows
        self.rows_rejected += sum(reading.rejected.values())
        for reason, count in reading.rejected.items():
            self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + count
        self.rows_sent += sent.readings_sent
        self.rows_failed += sent.readings_failed
        self.firehose_records += sent.records_sent
        self.firehose_calls += sent.calls
        self.retried_records += sent.retried_records
        self.billed_bytes += sent.billed_bytes
        self.payload_bytes += sent.payload_bytes
        self.raw_bytes += reading.raw_bytes
        self.units_sold += reading.units_sold
        self.units_lost += reading.units_lost
        self.units_expired += reading.units_expired
        self.units_delivered += reading.arrivals.units
        self.units_refused += reading.arrivals.refused_units

    @property
    def readings_per_s(self) -> float:
        return self.rows_sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "readings_per_s": round(self.readings_per_s, 1)}


def reading_time(moment: datetime, previous: datetime | None) -> datetime:
    """A reading's timestamp: ``moment`` at millisecond resolution, strictly after the previous reading."""
    moment = moment.astimezone(UTC)
    moment = moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
    if previous is not None and moment <= previous:
        moment = previous + timedelta(milliseconds=1)
    return moment


def reading_times(moments: Sequence[datetime], previous: datetime | None) -> list[datetime]:
    """Each reading's timestamp (``reading_time``), the first after ``previous``, each after the one before."""
    times: list[datetime] = []
    for moment in moments:
        previous = reading_time(moment, previous)
        times.append(previous)
    return times


Deliver = Callable[[SimulationState, datetime], Arrivals]  # adds the stops due by a time to a chunk
TruthSink = Callable[[datetime, str, bytes], object]  # keeps the simulator's record of one chunk's reading
# sees a chunk's reading as it is written: its time, the chunk, its columns and its event ids
ReadingObserver = Callable[[datetime, SimulationState, dict[str, Any], np.ndarray], object]


class Deliveries(Protocol):
    """The stores' side of the trucks for one run (``storeops.stores.deliveries.LedgerDeliveries``)."""

    def __call__(self, state: SimulationState, at: datetime) -> Arrivals:
        """Add to this chunk the stops of its stores that arrived by ``at``, once each."""

    def complete(self) -> None:
        """Every chunk has taken its readings: what every chunk applied need not be read again."""


def take_reading(state: SimulationState, at: datetime, deliver: Deliver | None = None) -> tuple[Tick, Arrivals]:
    """Sales since the chunk's previous reading (its audits taken before any delivery), then the deliveries
    that arrived by ``at``: the reading's numbers. Returns the tick (``on_hand`` after the deliveries)
    and what arrived.
    """
    tick = advance_to(state, at)
    arrivals = deliver(state, at) if deliver is not None else Arrivals()
    state.last_observed_at = at
    if arrivals.units:
        tick = replace(tick, on_hand=state.on_hand.copy())
    return tick, arrivals


def reading_columns(catalog: Catalog, state: SimulationState, tick: Tick) -> dict[str, Any]:
    """A chunk's tick as the columns ``validate_batch`` and the encoder take: its stores x every product,
    flattened store-major; per product, the shelf price and promotion of the local day its sales belong to."""
    case_pack = catalog.products["case_pack"].to_numpy()
    # the day the reading's sales belong to: a reading at local midnight reports the day that ended
    price, on_promotion = shelf_prices(catalog, local_date(tick.sim_clock - timedelta(milliseconds=1)))
    return {
        "on_hand": tick.on_hand.reshape(-1),
        "units_sold": tick.units_sold.reshape(-1),
        "units_expired": tick.units_expired.reshape(-1),
        "period_hours": tick.period_hours,
        "case_pack": np.broadcast_to(case_pack[None, :], state.on_hand.shape).reshape(-1),
        "price": price,
        "on_promotion": on_promotion,
    }


class _Identity:
    """Which store-products of a chunk have ids and names the schema accepts (per chunk, not per catalog)."""

    def __init__(self, catalog: Catalog) -> None:
        self.store_ids = catalog.stores["store_id"].tolist()
        self.products = (
            catalog.products["product_id"].tolist(),
            catalog.products["name"].tolist(),
            catalog.products["category"].tolist(),
        )

    def of(self, state: SimulationState) -> np.ndarray:
        return identity_fields_valid(self.store_ids[state.first_store : state.stop_store], *self.products)


class _StatePipeline:
    """A simulation's chunk states in order: the next one loads while this one is read, and the one
    before saves meanwhile (one I/O thread, so at most three chunks are in memory)."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulation-state")
        self.saving: Future[None] | None = None

    def __enter__(self) -> _StatePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.io.shutdown(wait=True)

    def __iter__(self) -> Iterator[SimulationState]:
        count = self.simulation.layout.count
        loading = self.io.submit(self.simulation.load, 0)
        for index in range(count):
            state = loading.result()
            if index + 1 < count:
                loading = self.io.submit(self.simulation.load, index + 1)
            yield state

    def save(self, state: SimulationState) -> None:
        self.flush()
        self.saving = self.io.submit(self.simulation.save, state)

    def flush(self) -> None:
        """Wait for the last save (raises if it was refused)."""
        saving, self.saving = self.saving, None
        if saving is not None:
            saving.result()


@dataclass(frozen=True)
class _ChunkReading:
    """One chunk's reading on its way: its numbers (the arrays are not kept) and its records in flight."""

    chunk: int
    stores: tuple[int, int]
    number: int
    observed_at: datetime
    period_hours: float
    rows: int
    units_sold: int
    units_lost: int
    units_expired: int
    arrivals: Arrivals
    rejected: dict[str, int]
    raw_bytes: int
    sending: PendingSend


def run_readings(
    simulation: Simulation,
    sender: FirehoseSender,
    times: Sequence[datetime],
    *,
    deliver: Deliveries | None = None,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    progress: Progress | None = None,
    corrupt: Callable[[dict[str, Any]], None] | None = None,
    record: TruthSink | None = None,
) -> IngestReport:
    """Take a reading at each of ``times`` (sales since the previous one, then due deliveries) and send
    every valid reading, a chunk of stores at a time: load the chunk, take its readings, send them,
    save it once Firehose has answered for them. The next chunk is read and sent meanwhile, so a
    loss is noticed one chunk later: the run then stops, saves both chunks (their sales happened)
    and raises ``DeliveryError``.

    Every store's reading of one time has the same ``observed_at``. ``record`` keeps the simulator's
    own record of each chunk's reading (``storeops.stores.truth``: lost demand, refused deliveries,
    shelf audits), never sent with the readings. ``corrupt`` lets tests inject invalid readings (it
    may change a chunk's columns in place). ``progress`` counts chunk readings.
    """
    started = time.perf_counter()
    catalog, layout = simulation.catalog, simulation.layout
    n_stores, n_products = catalog.shape
    report = IngestReport(stores=n_stores, products=n_products)
    moments = reading_times(times, simulation.manifest.last_observed_at)
    if not moments:
        return report
    periods = [0.0] * len(moments)
    encoder = ReadingEncoder(catalog)
    identity = _Identity(catalog)
    chunk_rows = max(1, raw_chunk_bytes // APPROX_LINE_BYTES)
    steps, done = layout.count * len(moments), 0
    failures: list[DeliveryError] = []
    pending: deque[tuple[SimulationState, list[_ChunkReading]]] = deque()

    def finish(state: SimulationState, readings: list[_ChunkReading], states: _StatePipeline) -> None:
        """Count a chunk's readings once Firehose has answered for them, then save the chunk."""
        nonlocal done
        for reading in readings:
            sent, error = reading.sending.outcome()
            report.add_chunk(reading, sent)
            periods[reading.number] = max(periods[reading.number], reading.period_hours)
            report.sim_clock = max(report.sim_clock, reading.observed_at.isoformat())
            logger.debug(
                "chunk %d/%d (stores %d-%d), reading %d/%d at %s covering %.3f h: %d readings sent in %d records, "
                "%d rejected %s, %d not delivered; %d units delivered (%d refused: no room on the shelf)",
                reading.chunk + 1,
                layout.count,
                reading.stores[0],
                reading.stores[1] - 1,
                reading.number + 1,
                len(moments),
                reading.observed_at.isoformat(),
                reading.period_hours,
                sent.readings_sent,
                sent.records_sent,
                sum(reading.rejected.values()),
                reading.rejected or "",
                sent.readings_failed,
                reading.arrivals.units,
                reading.arrivals.refused_units,
            )
            done += 1
            if progress:
                progress(done, steps)
            if error is not None:
                failures.append(error)
            elif sent.readings_failed:
                failures.append(
                    DeliveryError(
                        f"{sent.readings_failed} readings of chunk {reading.chunk} (stores {reading.stores[0]}-"
                        f"{reading.stores[1] - 1}) at {reading.observed_at.isoformat()} were not delivered after "
                        f"{sender.retry.max_attempts} attempts ({sent.last_error})",
                        lost=sent.readings_failed,
                        hint="check the delivery stream's health and quotas, then run again",
                    )
                )
        states.save(state)  # in the background, while the next chunk is read

    with (
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor,
        _StatePipeline(simulation) as states,
        sender.session() as session,
    ):
        for state in states:
            readings: list[_ChunkReading] = []
            identity_ok = identity.of(state)
            for number, observed_at in enumerate(moments):
                if state.last_observed_at is not None and state.last_observed_at >= observed_at:
                    raise StoreOpsError(
                        f"chunk {state.chunk} of {simulation.name} was read at {state.last_observed_at.isoformat()}, "
                        f"not before this reading ({observed_at.isoformat()})",
                        hint="take the reading at a later time",
                    )
                tick, arrivals = take_reading(state, observed_at, deliver)
                if record is not None:
                    name = f"truth-{observed_at:%Y%m%dT%H%M%S%f}-{state.chunk:05d}"
                    record(observed_at, name, truth_lines(catalog, state, tick, arrivals.refused))
                columns = reading_columns(catalog, state, tick)
                if corrupt is not None:
                    columns = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in columns.items()}
                    corrupt(columns)
                checked = validate_batch(columns, identity_ok)
                counted = _Counted(encoder.chunks(columns, observed_at, checked.valid, chunk_rows, state.first_store))
                sending = session.submit(pack_stream(counted, compressor, raw_chunk_bytes))
                readings.append(
                    _ChunkReading(
                        chunk=state.chunk,
                        stores=(state.first_store, state.stop_store),
                        number=number,
                        observed_at=observed_at,
                        period_hours=tick.period_hours,
                        rows=int(tick.on_hand.size),
                        units_sold=int(tick.units_sold.sum()),
                        units_lost=int(tick.units_lost.sum()),
                        units_expired=int(tick.units_expired.sum()),
                        arrivals=arrivals,
                        rejected=checked.rejected,
                        raw_bytes=counted.nbytes,
                        sending=sending,
                    )
                )
            pending.append((state, readings))
            while len(pending) > 1:  # the chunk before this one: its answers are in by now
                finish(*pending.popleft(), states)
            if failures:
                break  # stop reading: what was lost is reported, what was read is saved
        while pending:
            finish(*pending.popleft(), states)
        states.flush()
    report.seconds = time.perf_counter() - started
    if failures:
        first = failures[0]
        message = f"{report.rows_failed} readings were not delivered: {first.message}"
        raise DeliveryError(message, lost=report.rows_failed, hint=first.hint)
    if deliver is not None:
        deliver.complete()
    report.ticks = len(moments)
    report.hours_simulated = sum(periods)
    logger.info(
        "%d reading(s) of %d stores x %d products in %d chunks of up to %d stores, at %s covering %.3f h: "
        "%d readings sent in %d records (%d calls, %d retried), %d rejected %s; "
        "%d units sold, %d lost, %d expired, %d delivered (%d refused); %.2f s",
        len(moments),
        n_stores,
        n_products,
        layout.count,
        layout.chunk_stores,
        report.sim_clock,
        report.hours_simulated,
        report.rows_sent,
        report.firehose_records,
        report.firehose_calls,
        report.retried_records,
        report.rows_rejected,
        report.rejected_reasons or "",
        report.units_sold,
        report.units_lost,
        report.units_expired,
        report.units_delivered,
        report.units_refused,
        report.seconds,
    )
    return report


def stream_readings(
    catalog: Catalog,
    state: SimulationState,
    sender: FirehoseSender,
    times: Sequence[datetime],
    *,
    deliver: Deliveries | None = None,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    progress: Progress | None = None,
    corrupt: Callable[[dict[str, Any]], None] | None = None,
) -> IngestReport:
    """``run_readings`` for one in-memory state of the whole catalog (``initial_state(catalog, start)``:
    small catalogs, tests, the benchmark); ``state`` is advanced in place."""
    return run_readings(
        Simulation.of_state(catalog, state),
        sender,
        times,
        deliver=deliver,
        raw_chunk_bytes=raw_chunk_bytes,
        progress=progress,
        corrupt=corrupt,
    )


class _Counted:
    """Passes batches through while counting their bytes."""

    def __init__(self, batches: Iterable[EncodedBatch]) -> None:
        self.batches = batches
        self.nbytes = 0

    def __iter__(self) -> Iterator[EncodedBatch]:
        for batch in self.batches:
            self.nbytes += batch.nbytes
            yield batch


def event_time_key(observed_at: datetime, name: str) -> str:
    """Where a reading written by event time goes: the ``dt=/hour=`` partition of its ``observed_at``."""
    return f"{INVENTORY_PREFIX}dt={observed_at:%Y-%m-%d}/hour={observed_at:%H}/{name}.json.gz"


def put_by_event_time(s3: S3Client, bucket: str, observed_at: datetime, name: str, gzipped: bytes) -> str:
    """One gzip object (one or more members) of readings into its event-time partition."""
    key = event_time_key(observed_at, name)
    s3.put_object(Bucket=bucket, Key=key, Body=gzipped)
    return key


def write_by_event_time(s3: S3Client, bucket: str, observed_at: datetime, name: str, ndjson: bytes) -> str:
    """One gzip object of readings into its event-time partition (history and scenarios; live data goes
    through Firehose, which names partitions by arrival)."""
    return put_by_event_time(s3, bucket, observed_at, name, gzip.compress(ndjson, compresslevel=1, mtime=0))


def backfill(
    catalog: Catalog,
    s3: S3Client,
    bucket: str,
    days: int,
    *,
    end: datetime,
    every_hours: int = 1,
    every_minutes: int | None = None,
    hours: int | None = None,
    progress: Progress | None = None,
    max_in_flight: int = 4,
    simulation: Simulation | None = None,
    restock_hour: int | None = RESTOCK_HOUR,
    observe: ReadingObserver | None = None,
) -> tuple[Simulation, IngestReport]:
    """Write ``days`` of history straight into the lake's ``dt=/hour=`` partitions: a reading every
    ``every_hours`` hours, reporting the sales of all of them. ``every_minutes`` takes a reading every
    that many minutes instead (e.g. 1, the deployment's cadence), and ``hours`` sets the span in hours.

    History is keyed by event time (Firehose stamps arrival time, so it cannot carry history).
    A chunk of stores at a time, simulates hour by hour from ``end - days`` to ``end`` (one object
    per reading and chunk) and saves the chunk's final state into ``simulation`` (by default a new
    one in memory), from which the live simulation continues; ``progress`` counts chunk-hours.
    History has no trucks: every shelf is filled to its capacity at ``restock_hour`` local time each
    day (None: never), as a store served by some earlier supply would be, so the sales history a
    planner learns from is not one long stock-out. ``observe`` sees each chunk's reading as it is written
    (its time, the chunk, its columns and event ids).
    """
    span_hours = hours if hours is not None else days * 24
    if span_hours < 1:
        raise ValueError("backfill needs at least one hour")
    if every_minutes is not None and not 1 <= every_minutes <= 60:
        raise ValueError("every_minutes must be 1 to 60")
    tick_hours = (every_minutes or 60) / 60  # simulated time per step
    steps_per_reading = 1 if every_minutes else every_hours
    started = time.perf_counter()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=span_hours)
    simulation = simulation if simulation is not None else Simulation.in_memory(catalog, start)
    simulation.restart(start)
    layout = simulation.layout
    encoder = ReadingEncoder(catalog)
    run_id = uuid.uuid4().hex[:12]
    ticks = round(span_hours / tick_hours)
    steps = layout.count * ticks
    report = IngestReport(stores=catalog.shape[0], products=catalog.shape[1])
    chunk_rows = max(1, DEFAULT_RAW_CHUNK_BYTES // APPROX_LINE_BYTES)
    with (
        ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="backfill") as pool,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor,
    ):
        writes: deque[Future[str]] = deque()
        for index, first, stop in layout:
            simulation.chunks.replace(index)
            state = initial_state(catalog, start, chunk=index, stores=(first, stop))
            sold = np.zeros(state.shape, dtype=np.int64)
            expired = np.zeros(state.shape, dtype=np.int64)
            for hour_index in range(ticks):
                tick = advance_to(state, start + timedelta(hours=tick_hours * (hour_index + 1)))
                sold += tick.units_sold
                expired += tick.units_expired
                report.units_sold += int(tick.units_sold.sum())
                report.units_lost += int(tick.units_lost.sum())
                report.units_expired += int(tick.units_expired.sum())
                if restock_hour is not None and _is_local_hour(state.sim_clock, restock_hour):
                    report.units_delivered += restock(state)
                    tick = replace(tick, on_hand=state.on_hand.copy())
                if (hour_index + 1) % steps_per_reading == 0:
                    observed_at = state.sim_clock
                    state.last_observed_at = observed_at
                    period = replace(
                        tick, units_sold=sold, units_expired=expired, period_hours=tick_hours * steps_per_reading
                    )
                    columns = reading_columns(catalog, state, period)
                    event_ids = random_event_ids(period.on_hand.size)
                    counted = _Counted(encoder.chunks(columns, observed_at, None, chunk_rows, first, event_ids))
                    records = list(pack_stream(counted, compressor))
                    name = f"backfill-{run_id}-{hour_index:05d}-{index:05d}"
                    body = b"".join(r.data for r in records)
                    writes.append(pool.submit(put_by_event_time, s3, bucket, observed_at, name, body))
                    sold = np.zeros(state.shape, dtype=np.int64)
                    expired = np.zeros(state.shape, dtype=np.int64)
                    report.backfill_rows += sum(r.readings for r in records)
                    report.backfill_objects += 1
                    report.raw_bytes += counted.nbytes
                    while len(writes) > 2 * max_in_flight:
                        writes.popleft().result()
                    if observe is not None:
                        observe(observed_at, state, columns, event_ids)
                if progress:
                    progress(index * ticks + hour_index + 1, steps)
            simulation.save(state)
        for write in writes:
            write.result()
    report.ticks = ticks
    report.seconds = time.perf_counter() - started
    report.sim_clock = end.isoformat()
    logger.info(
        "backfilled %d readings in %d objects over %d hours, %d chunks of up to %d stores (%d MB of JSON) in %.1f s",
        report.backfill_rows,
        report.backfill_objects,
        span_hours,
        layout.count,
        layout.chunk_stores,
        report.raw_bytes // 1_000_000,
        report.seconds,
    )
    return simulation, report


def _is_local_hour(moment: datetime, hour: int) -> bool:
    """Is ``moment`` exactly ``hour`` o'clock local time?"""
    local = moment.astimezone(ZoneInfo(TIMEZONE))
    return local.hour == hour and local.minute == 0 and local.second == 0
