"""The live readings: at each reading time, a chunk of stores at a time, simulate, validate, encode, pack and
send to Firehose; save each chunk once Firehose has answered for its readings (``run_readings``)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from storeops.calendar import local_date
from storeops.contracts.reading import identity_fields_valid, validate_batch
from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.catalog import Catalog
from storeops.stores.encoding import EncodedBatch, ReadingEncoder
from storeops.stores.firehose import (
    DEFAULT_RAW_CHUNK_BYTES,
    FirehoseSender,
    PendingSend,
    SendResult,
    SendSession,
    pack_stream,
)
from storeops.stores.reference import shelf_prices
from storeops.stores.simulation import Arrivals, SimulationState, Tick, advance_to
from storeops.stores.state import Simulation
from storeops.stores.truth import truth_lines

APPROX_LINE_BYTES = 300  # a reading's NDJSON line, to size chunks near the raw chunk bytes

Progress = Callable[[int, int], None]

logger = logging.getLogger(__name__)


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
    moments = reading_times(times, simulation.manifest.last_observed_at)
    run = _ReadingRun(simulation, sender, moments, raw_chunk_bytes, deliver, corrupt, record, progress)
    if not moments:
        return run.report
    run.send_all()
    if run.failures:
        first = run.failures[0]
        message = f"{run.report.rows_failed} readings were not delivered: {first.message}"
        raise DeliveryError(message, lost=run.report.rows_failed, hint=first.hint)
    if deliver is not None:
        deliver.complete()
    run.report.ticks = len(moments)
    run.report.hours_simulated = sum(run.periods)
    run.log_summary()
    return run.report


class _ReadingRun:
    """One ``run_readings``: reads the chunks in order, sends their readings, counts each chunk's readings once
    Firehose has answered for them, saves the chunk, and keeps the losses (the run stops at the first)."""

    def __init__(
        self,
        simulation: Simulation,
        sender: FirehoseSender,
        moments: list[datetime],
        raw_chunk_bytes: int,
        deliver: Deliveries | None,
        corrupt: Callable[[dict[str, Any]], None] | None,
        record: TruthSink | None,
        progress: Progress | None,
    ) -> None:
        self.simulation = simulation
        self.sender = sender
        self.moments = moments
        self.raw_chunk_bytes = raw_chunk_bytes
        self.deliver = deliver
        self.corrupt = corrupt
        self.record = record
        self.progress = progress
        self.started = time.perf_counter()
        catalog = simulation.catalog
        self.report = IngestReport(stores=catalog.shape[0], products=catalog.shape[1])
        self.periods = [0.0] * len(moments)  # each reading's longest period over the chunks
        self.encoder = ReadingEncoder(catalog)
        self.identity = _Identity(catalog)
        self.chunk_rows = max(1, raw_chunk_bytes // APPROX_LINE_BYTES)
        self.steps, self.done = simulation.layout.count * len(moments), 0
        self.failures: list[DeliveryError] = []

    def send_all(self) -> None:
        """Every chunk's readings, the chunk before the current one counted and saved while this one is read."""
        pending: deque[tuple[SimulationState, list[_ChunkReading]]] = deque()
        with (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor,
            _StatePipeline(self.simulation) as states,
            self.sender.session() as session,
        ):
            for state in states:
                identity_ok = self.identity.of(state)
                readings = [
                    self._read(state, number, observed_at, identity_ok, session, compressor)
                    for number, observed_at in enumerate(self.moments)
                ]
                pending.append((state, readings))
                while len(pending) > 1:  # the chunk before this one: its answers are in by now
                    self._finish(*pending.popleft(), states)
                if self.failures:
                    break  # stop reading: what was lost is reported, what was read is saved
            while pending:
                self._finish(*pending.popleft(), states)
            states.flush()
        self.report.seconds = time.perf_counter() - self.started

    def _read(
        self,
        state: SimulationState,
        number: int,
        observed_at: datetime,
        identity_ok: np.ndarray,
        session: SendSession,
        compressor: ThreadPoolExecutor,
    ) -> _ChunkReading:
        """One chunk's reading at ``observed_at``: taken, recorded, validated, and on its way to Firehose."""
        if state.last_observed_at is not None and state.last_observed_at >= observed_at:
            raise StoreOpsError(
                f"chunk {state.chunk} of {self.simulation.name} was read at {state.last_observed_at.isoformat()}, "
                f"not before this reading ({observed_at.isoformat()})",
                hint="take the reading at a later time",
            )
        catalog = self.simulation.catalog
        tick, arrivals = take_reading(state, observed_at, self.deliver)
        if self.record is not None:
            name = f"truth-{observed_at:%Y%m%dT%H%M%S%f}-{state.chunk:05d}"
            self.record(observed_at, name, truth_lines(catalog, state, tick, arrivals.refused))
        columns = reading_columns(catalog, state, tick)
        if self.corrupt is not None:
            columns = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in columns.items()}
            self.corrupt(columns)
        checked = validate_batch(columns, identity_ok)
        batches = self.encoder.chunks(columns, observed_at, checked.valid, self.chunk_rows, state.first_store)
        counted = CountedBatches(batches)
        sending = session.submit(pack_stream(counted, compressor, self.raw_chunk_bytes))  # reads every batch
        return _ChunkReading(
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

    def _finish(self, state: SimulationState, readings: list[_ChunkReading], states: _StatePipeline) -> None:
        """Count a chunk's readings once Firehose has answered for them, then save the chunk."""
        for reading in readings:
            sent, error = reading.sending.outcome()
            self.report.add_chunk(reading, sent)
            self.periods[reading.number] = max(self.periods[reading.number], reading.period_hours)
            self.report.sim_clock = max(self.report.sim_clock, reading.observed_at.isoformat())
            self._log_chunk(reading, sent)
            self.done += 1
            if self.progress:
                self.progress(self.done, self.steps)
            failure = error or self._loss(reading, sent)
            if failure is not None:
                self.failures.append(failure)
        states.save(state)  # in the background, while the next chunk is read

    def _loss(self, reading: _ChunkReading, sent: SendResult) -> DeliveryError | None:
        if not sent.readings_failed:
            return None
        return DeliveryError(
            f"{sent.readings_failed} readings of chunk {reading.chunk} (stores {reading.stores[0]}-"
            f"{reading.stores[1] - 1}) at {reading.observed_at.isoformat()} were not delivered after "
            f"{self.sender.retry.max_attempts} attempts ({sent.last_error})",
            lost=sent.readings_failed,
            hint="check the delivery stream's health and quotas, then run again",
        )

    def _log_chunk(self, reading: _ChunkReading, sent: SendResult) -> None:
        logger.debug(
            "chunk %d/%d (stores %d-%d), reading %d/%d at %s covering %.3f h: %d readings sent in %d records, "
            "%d rejected %s, %d not delivered; %d units delivered (%d refused: no room on the shelf)",
            reading.chunk + 1,
            self.simulation.layout.count,
            reading.stores[0],
            reading.stores[1] - 1,
            reading.number + 1,
            len(self.moments),
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

    def log_summary(self) -> None:
        report, layout = self.report, self.simulation.layout
        logger.info(
            "%d reading(s) of %d stores x %d products in %d chunks of up to %d stores, at %s covering %.3f h: "
            "%d readings sent in %d records (%d calls, %d retried), %d rejected %s; "
            "%d units sold, %d lost, %d expired, %d delivered (%d refused); %.2f s",
            len(self.moments),
            report.stores,
            report.products,
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


class CountedBatches:
    """Passes batches through while counting their bytes."""

    def __init__(self, batches: Iterable[EncodedBatch]) -> None:
        self.batches = batches
        self.nbytes = 0

    def __iter__(self) -> Iterator[EncodedBatch]:
        for batch in self.batches:
            self.nbytes += batch.nbytes
            yield batch
