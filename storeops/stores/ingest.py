"""StoreApp runs: simulate ticks, validate, encode, pack and send; backfill history.

Plain functions over injected clients, wrapped by the ``store-data`` Prefect flow's tasks.
The simulation state persists in the data-lake bucket under ``simulator/`` so a scheduled
run continues where the previous one stopped.
"""

from __future__ import annotations

import gzip
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from storeops.contracts.reading import identity_fields_valid, validate_batch
from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.encoding import EncodedBatch, ReadingEncoder
from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, FirehoseSender, SendResult, pack_stream
from storeops.stores.simulation import SimulationState, Tick, advance, advance_to, initial_state

SIMULATOR_PREFIX = "simulator/"
INVENTORY_PREFIX = "inventory/"

APPROX_LINE_BYTES = 290  # a reading's NDJSON line, to size chunks near the raw chunk bytes

Progress = Callable[[int, int], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationConfig:
    """What identifies one simulated retailer; each has its own persisted state."""

    stores: int
    products: int
    seed: int = 7

    @property
    def state_key(self) -> str:
        return f"{SIMULATOR_PREFIX}{self.stores}x{self.products}-seed{self.seed}/state.npz"


class SimulationStore:
    """Loads and saves the simulation state in the data lake; detects a concurrent writer."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def load(self, config: SimulationConfig) -> tuple[SimulationState | None, str | None]:
        """The saved state and its ETag, or (None, None) for a new simulation."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=config.state_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None, None
            raise
        return SimulationState.from_bytes(response["Body"].read()), response.get("ETag")

    def save(self, config: SimulationConfig, state: SimulationState, expected_etag: str | None) -> str:
        """Write the state only if nobody else wrote it since ``expected_etag`` was read."""
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(Bucket=self.bucket, Key=config.state_key, Body=state.to_bytes(), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise StoreOpsError(
                    f"another run changed the simulation state {config.state_key} during this run",
                    hint="run one store-data flow at a time per simulation (the deployment's concurrency limit is 1)",
                ) from None
            raise
        return str(response.get("ETag", ""))


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
    units_lost: int = 0
    units_delivered: int = 0
    hours_simulated: float = 0.0
    seconds: float = 0.0
    sim_clock: str = ""

    def add_tick(self, tick: Tick, delivered: int, rejected: dict[str, int], sent: SendResult, raw_bytes: int) -> None:
        """Count one reading's tick: what was simulated, rejected, sent."""
        self.ticks += 1
        self.rows_generated += int(tick.on_hand.size)
        self.rows_rejected += sum(rejected.values())
        for reason, count in rejected.items():
            self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + count
        self.rows_sent += sent.readings_sent
        self.rows_failed += sent.readings_failed
        self.firehose_records += sent.records_sent
        self.firehose_calls += sent.calls
        self.retried_records += sent.retried_records
        self.billed_bytes += sent.billed_bytes
        self.payload_bytes += sent.payload_bytes
        self.raw_bytes += raw_bytes
        self.units_sold += int(tick.units_sold.sum())
        self.units_lost += int(tick.units_lost.sum())
        self.units_delivered += delivered
        self.hours_simulated += tick.period_hours

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


Deliver = Callable[[datetime], int]  # applies the deliveries due by a time to the state; returns units


def take_reading(state: SimulationState, at: datetime, deliver: Deliver | None = None) -> tuple[Tick, int]:
    """Sales since the previous reading, then the deliveries that arrived by ``at``: the reading's numbers.

    Returns the tick (``on_hand`` after the deliveries) and the units delivered.
    """
    tick = advance_to(state, at)
    delivered = deliver(at) if deliver is not None else 0
    state.last_observed_at = at
    return replace(tick, on_hand=state.on_hand.copy()), delivered


def reading_columns(catalog: Catalog, state: SimulationState, tick: Tick) -> dict[str, Any]:
    """A tick's numbers as the flat columns ``validate_batch`` and the encoder take."""
    case_pack = catalog.products["case_pack"].to_numpy()
    return {
        "on_hand": tick.on_hand.reshape(-1),
        "units_sold": tick.units_sold.reshape(-1),
        "units_lost": tick.units_lost.reshape(-1),
        "period_hours": tick.period_hours,
        "reorder_point": state.reorder_point.reshape(-1),
        "target_stock": state.target_stock.reshape(-1),
        "case_pack": np.broadcast_to(case_pack[None, :], state.on_hand.shape).reshape(-1),
    }


def stream_readings(
    catalog: Catalog,
    state: SimulationState,
    sender: FirehoseSender,
    times: Sequence[datetime],
    *,
    deliver: Deliver | None = None,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    progress: Progress | None = None,
    corrupt: Callable[[dict[str, Any]], None] | None = None,
) -> IngestReport:
    """Take a reading at each of ``times`` (sales since the previous one, then due deliveries) and send
    every valid reading; raise ``DeliveryError`` on loss.

    ``corrupt`` lets tests inject invalid readings (it may change the columns in place).
    """
    started = time.perf_counter()
    n_stores, n_products = catalog.shape
    report = IngestReport(stores=n_stores, products=n_products)
    encoder = ReadingEncoder(catalog)
    identity_ok = identity_fields_valid(
        catalog.stores["store_id"],
        catalog.products["product_id"],
        catalog.products["name"],
        catalog.products["category"],
    )
    chunk_rows = max(1, raw_chunk_bytes // APPROX_LINE_BYTES)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor:
        for number, moment in enumerate(times, start=1):
            tick_started = time.perf_counter()
            observed_at = reading_time(moment, state.last_observed_at)
            tick, delivered = take_reading(state, observed_at, deliver)
            columns = reading_columns(catalog, state, tick)
            if corrupt is not None:
                columns = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in columns.items()}
                corrupt(columns)
            checked = validate_batch(columns, identity_ok)
            counted = _Counted(encoder.chunks(columns, observed_at, checked.valid, chunk_rows))
            sent = sender.send_stream(pack_stream(counted, compressor, raw_chunk_bytes))
            report.add_tick(tick, delivered, checked.rejected, sent, counted.nbytes)
            report.sim_clock = state.sim_clock.isoformat()
            report.seconds = time.perf_counter() - started
            logger.info(
                "reading %d/%d at %s covering %.3f h: %d readings sent in %d records (%d calls, %d retried), "
                "%d rejected %s, %d not delivered; %d units sold, %d lost, %d delivered; %.2f s",
                number,
                len(times),
                observed_at.isoformat(),
                tick.period_hours,
                sent.readings_sent,
                sent.records_sent,
                sent.calls,
                sent.retried_records,
                checked.rejected_count,
                checked.rejected or "",
                sent.readings_failed,
                int(tick.units_sold.sum()),
                int(tick.units_lost.sum()),
                delivered,
                time.perf_counter() - tick_started,
            )
            if progress:
                progress(number, len(times))
            if sent.readings_failed:
                raise DeliveryError(
                    f"{sent.readings_failed} readings of reading {number} were not delivered after "
                    f"{sender.retry.max_attempts} attempts ({sent.last_error})",
                    lost=report.rows_failed,
                    hint="check the delivery stream's health and quotas, then run again",
                )
    report.seconds = time.perf_counter() - started
    return report


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


def write_by_event_time(s3: Any, bucket: str, observed_at: datetime, name: str, ndjson: bytes) -> str:
    """One gzip object of readings into its event-time partition (history and scenarios; live data goes
    through Firehose, which names partitions by arrival)."""
    key = event_time_key(observed_at, name)
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(ndjson, compresslevel=1, mtime=0))
    return key


def backfill(
    catalog: Catalog,
    s3: Any,
    bucket: str,
    days: int,
    *,
    end: datetime,
    every_hours: int = 1,
    progress: Progress | None = None,
    max_in_flight: int = 4,
) -> tuple[SimulationState, IngestReport]:
    """Write ``days`` of history straight into the lake's ``dt=/hour=`` partitions: a reading every
    ``every_hours`` hours, reporting the sales of all of them.

    History is keyed by event time (Firehose stamps arrival time, so it cannot carry history).
    Simulates hour by hour from ``end - days`` to ``end``; returns the final state, from which
    the live simulation continues.
    """
    if days < 1:
        raise ValueError("backfill needs at least one day")
    started = time.perf_counter()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    state = initial_state(catalog, start)
    encoder = ReadingEncoder(catalog)
    run_id = uuid.uuid4().hex[:12]
    hours = days * 24
    report = IngestReport(stores=catalog.shape[0], products=catalog.shape[1])
    sold = np.zeros(state.shape, dtype=np.int64)
    lost = np.zeros(state.shape, dtype=np.int64)
    with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
        futures = []
        for hour_index in range(hours):
            tick = advance(state, 1.0)
            sold += tick.units_sold
            lost += tick.units_lost
            if (hour_index + 1) % every_hours:
                continue
            observed_at = state.sim_clock
            state.last_observed_at = observed_at
            period = replace(tick, units_sold=sold, units_lost=lost, period_hours=float(every_hours))
            batch = encoder.encode(reading_columns(catalog, state, period), observed_at)
            name = f"backfill-{run_id}-{hour_index:05d}"
            futures.append(pool.submit(write_by_event_time, s3, bucket, observed_at, name, batch.data))
            sold, lost = np.zeros_like(sold), np.zeros_like(lost)
            report.backfill_rows += batch.count
            report.backfill_objects += 1
            report.raw_bytes += batch.nbytes
            while len(futures) > 2 * max_in_flight:
                futures.pop(0).result()
            if progress:
                progress(hour_index + 1, hours)
        for future in futures:
            future.result()
    if progress:
        progress(hours, hours)
    report.ticks = hours
    report.seconds = time.perf_counter() - started
    report.sim_clock = state.sim_clock.isoformat()
    logger.info(
        "backfilled %d readings in %d objects over %d days (%d MB of JSON) in %.1f s",
        report.backfill_rows,
        report.backfill_objects,
        days,
        report.raw_bytes // 1_000_000,
        report.seconds,
    )
    return state, report


def load_or_start(
    store: SimulationStore, config: SimulationConfig, now: datetime
) -> tuple[Catalog, SimulationState, str | None]:
    """The catalog and the state to continue from; a new simulation starts an hour before ``now``
    (so its first reading reports an hour of sales)."""
    catalog = build_catalog(config.stores, config.products, config.seed)
    state, etag = store.load(config)
    if state is None:
        state = initial_state(catalog, now - timedelta(hours=1))
    elif state.shape != catalog.shape:
        raise StoreOpsError(f"saved state {config.state_key} has shape {state.shape}, expected {catalog.shape}")
    return catalog, state, etag
