"""History: readings written straight into the lake's event-time partitions (``backfill``), and the
event-time keys that history, scenarios and checks write readings under."""

from __future__ import annotations

import gzip
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from storeops.calendar import TIMEZONE
from storeops.stores.catalog import Catalog
from storeops.stores.encoding import ReadingEncoder, random_event_ids
from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, pack_stream
from storeops.stores.readings import APPROX_LINE_BYTES, CountedBatches, IngestReport, Progress, reading_columns
from storeops.stores.simulation import ChunkLayout, SimulationState, Tick, advance_to, initial_state, restock
from storeops.stores.state import Simulation

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INVENTORY_PREFIX = "inventory/"
RESTOCK_HOUR = 6  # history (backfill) has no trucks: shelves are filled to capacity at 06:00 local each day

# sees a chunk's reading as it is written: its time, the chunk, its columns and its event ids
ReadingObserver = Callable[[datetime, SimulationState, dict[str, Any], np.ndarray], object]

logger = logging.getLogger(__name__)


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
    started = time.perf_counter()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=span_hours)
    simulation = simulation if simulation is not None else Simulation.in_memory(catalog, start)
    simulation.restart(start)
    tick_hours = (every_minutes or 60) / 60  # simulated time per step
    ticks = round(span_hours / tick_hours)
    with (
        ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="backfill") as pool,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor,
    ):
        history = _History(catalog, start, tick_hours, 1 if every_minutes else every_hours, compressor)
        history.restock_hour, history.observe = restock_hour, observe
        _write_chunks(history, simulation, ticks, _Writer(pool, s3, bucket, max_in_flight), progress)
    report = history.report
    report.ticks = ticks
    report.seconds = time.perf_counter() - started
    report.sim_clock = end.isoformat()
    _log_backfill(report, span_hours, simulation.layout)
    return simulation, report


def _write_chunks(
    history: _History, simulation: Simulation, ticks: int, writer: _Writer, progress: Progress | None
) -> None:
    """Simulate each chunk of stores ``ticks`` steps from the history's start, writing its readings as they are
    taken and saving its final state into ``simulation``."""
    layout = simulation.layout
    for index, first, stop in layout:
        simulation.chunks.replace(index)
        state = initial_state(history.catalog, history.start, chunk=index, stores=(first, stop))
        for hour_index, reading in history.readings(state, ticks):
            if reading is not None:
                writer.put(*reading)
            if progress:
                progress(index * ticks + hour_index + 1, layout.count * ticks)
        simulation.save(state)
    writer.wait()


class _Writer:
    """Puts readings into their event-time partitions on a pool, at most ``2 * max_in_flight`` waiting."""

    def __init__(self, pool: ThreadPoolExecutor, s3: S3Client, bucket: str, max_in_flight: int) -> None:
        self.pool, self.s3, self.bucket, self.max_in_flight = pool, s3, bucket, max_in_flight
        self.writes: deque[Future[str]] = deque()

    def put(self, observed_at: datetime, name: str, gzipped: bytes) -> None:
        """Submit one object's write, then wait for the oldest writes while more than ``2 * max_in_flight`` wait."""
        self.writes.append(self.pool.submit(put_by_event_time, self.s3, self.bucket, observed_at, name, gzipped))
        while len(self.writes) > 2 * self.max_in_flight:
            self.writes.popleft().result()

    def wait(self) -> None:
        """Every write done (raising the first that failed)."""
        for write in self.writes:
            write.result()


def _log_backfill(report: IngestReport, span_hours: int, layout: ChunkLayout) -> None:
    """The backfill's one log line: what it wrote, over how many hours and chunks, in how long."""
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


class _History:
    """One backfill's simulation of a chunk, step by step, and the gzipped readings it takes (``readings``)."""

    def __init__(
        self,
        catalog: Catalog,
        start: datetime,
        tick_hours: float,
        steps_per_reading: int,
        compressor: ThreadPoolExecutor,
    ) -> None:
        self.catalog = catalog
        self.start = start
        self.tick_hours = tick_hours  # simulated time per step
        self.steps_per_reading = steps_per_reading
        self.compressor = compressor
        self.restock_hour: int | None = RESTOCK_HOUR
        self.observe: ReadingObserver | None = None
        self.encoder = ReadingEncoder(catalog)
        self.run_id = uuid.uuid4().hex[:12]
        self.chunk_rows = max(1, DEFAULT_RAW_CHUNK_BYTES // APPROX_LINE_BYTES)
        self.report = IngestReport(stores=catalog.shape[0], products=catalog.shape[1])

    def readings(self, state: SimulationState, ticks: int) -> Iterator[tuple[int, tuple[datetime, str, bytes] | None]]:
        """Advance the chunk ``ticks`` steps; after each, the step's number and, at a reading, its
        (observed_at, object name, gzipped readings) to write."""
        sold = np.zeros(state.shape, dtype=np.int64)
        expired = np.zeros(state.shape, dtype=np.int64)
        for hour_index in range(ticks):
            tick = advance_to(state, self.start + timedelta(hours=self.tick_hours * (hour_index + 1)))
            sold += tick.units_sold
            expired += tick.units_expired
            self.report.units_sold += int(tick.units_sold.sum())
            self.report.units_lost += int(tick.units_lost.sum())
            self.report.units_expired += int(tick.units_expired.sum())
            if self.restock_hour is not None and _is_local_hour(state.sim_clock, self.restock_hour):
                self.report.units_delivered += restock(state)
                tick = replace(tick, on_hand=state.on_hand.copy())
            if (hour_index + 1) % self.steps_per_reading:
                yield hour_index, None
                continue
            period = replace(
                tick, units_sold=sold, units_expired=expired, period_hours=self.tick_hours * self.steps_per_reading
            )
            yield hour_index, self._reading(state, period, f"backfill-{self.run_id}-{hour_index:05d}-{state.chunk:05d}")
            sold = np.zeros(state.shape, dtype=np.int64)
            expired = np.zeros(state.shape, dtype=np.int64)

    def _reading(self, state: SimulationState, period: Tick, name: str) -> tuple[datetime, str, bytes]:
        """The chunk's reading of ``period``, encoded and gzipped, counted in the report."""
        observed_at = state.sim_clock
        state.last_observed_at = observed_at
        columns = reading_columns(self.catalog, state, period)
        event_ids = random_event_ids(period.on_hand.size)
        batches = self.encoder.chunks(columns, observed_at, None, self.chunk_rows, state.first_store, event_ids)
        counted = CountedBatches(batches)
        records = list(pack_stream(counted, self.compressor))
        self.report.backfill_rows += sum(r.readings for r in records)
        self.report.backfill_objects += 1
        self.report.raw_bytes += counted.nbytes
        if self.observe is not None:
            self.observe(observed_at, state, columns, event_ids)
        return observed_at, name, b"".join(r.data for r in records)


def _is_local_hour(moment: datetime, hour: int) -> bool:
    """Is ``moment`` exactly ``hour`` o'clock local time?"""
    local = moment.astimezone(ZoneInfo(TIMEZONE))
    return local.hour == hour and local.minute == 0 and local.second == 0
