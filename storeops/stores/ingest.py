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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from storeops.contracts.reading import identity_fields_valid, validate_batch
from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.encoding import EncodedBatch, ReadingEncoder
from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, FirehoseSender, pack_stream
from storeops.stores.simulation import SimulationState, advance, initial_state

SIMULATOR_PREFIX = "simulator/"
INVENTORY_PREFIX = "inventory/"

APPROX_LINE_BYTES = 290  # a reading's NDJSON line, to size chunks near the raw chunk bytes

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SimulationConfig:
    """What identifies one simulated retailer; each has its own persisted state."""

    stores: int
    products: int
    seed: int = 7
    hours_per_tick: float = 1.0

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
    units_delivered: int = 0
    seconds: float = 0.0
    sim_clock: str = ""

    @property
    def readings_per_s(self) -> float:
        return self.rows_sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "readings_per_s": round(self.readings_per_s, 1)}


def next_observed_at(previous: datetime | None, clock: Clock) -> datetime:
    """The real time of a reading, strictly after the previous tick's (millisecond resolution)."""
    now = clock().astimezone(UTC)
    now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    if previous is not None and now <= previous:
        now = previous + timedelta(milliseconds=1)
    return now


def stream_ticks(
    catalog: Catalog,
    state: SimulationState,
    sender: FirehoseSender,
    ticks: int,
    hours_per_tick: float,
    *,
    clock: Clock = utc_now,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    progress: Progress | None = None,
    corrupt: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> IngestReport:
    """Advance ``ticks`` ticks, sending every valid reading; raise ``DeliveryError`` on loss.

    ``corrupt`` lets tests inject invalid readings (it may modify on_hand/units_sold in place).
    """
    started = time.perf_counter()
    n_stores, n_products = catalog.shape
    report = IngestReport(stores=n_stores, products=n_products)
    encoder = ReadingEncoder(catalog, state.reorder_point, state.target_stock)
    identity_ok = identity_fields_valid(
        catalog.stores["store_id"],
        catalog.products["product_id"],
        catalog.products["name"],
        catalog.products["category"],
    )
    case_pack = np.broadcast_to(catalog.products["case_pack"].to_numpy()[None, :], state.on_hand.shape).ravel()
    reorder_point, target_stock = state.reorder_point.ravel(), state.target_stock.ravel()
    chunk_rows = max(1, raw_chunk_bytes // APPROX_LINE_BYTES)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip") as compressor:
        for tick_number in range(1, ticks + 1):
            tick_started = time.perf_counter()
            tick = advance(state, hours_per_tick)
            on_hand, units_sold = tick.on_hand.ravel().copy(), tick.units_sold.ravel().copy()
            if corrupt is not None:
                corrupt(on_hand, units_sold)
            checked = validate_batch(on_hand, units_sold, reorder_point, target_stock, case_pack, identity_ok)
            observed_at = next_observed_at(state.last_observed_at, clock)
            state.last_observed_at = observed_at
            counted = _Counted(encoder.chunks(on_hand, units_sold, observed_at, checked.valid, chunk_rows))
            sent = sender.send_stream(pack_stream(counted, compressor, raw_chunk_bytes))
            report.ticks += 1
            report.rows_generated += len(on_hand)
            report.rows_rejected += checked.rejected_count
            for reason, count in checked.rejected.items():
                report.rejected_reasons[reason] = report.rejected_reasons.get(reason, 0) + count
            report.rows_sent += sent.readings_sent
            report.rows_failed += sent.readings_failed
            report.firehose_records += sent.records_sent
            report.firehose_calls += sent.calls
            report.retried_records += sent.retried_records
            report.billed_bytes += sent.billed_bytes
            report.payload_bytes += sent.payload_bytes
            report.raw_bytes += counted.nbytes
            report.sim_clock = state.sim_clock.isoformat()
            report.seconds = time.perf_counter() - started
            logger.info(
                "tick %d/%d at %s: %d readings sent in %d records (%d calls, %d retried), %d rejected %s, "
                "%d not delivered; %.2f s",
                tick_number,
                ticks,
                observed_at.isoformat(),
                sent.readings_sent,
                sent.records_sent,
                sent.calls,
                sent.retried_records,
                checked.rejected_count,
                checked.rejected or "",
                sent.readings_failed,
                time.perf_counter() - tick_started,
            )
            if progress:
                progress(tick_number, ticks)
            if sent.readings_failed:
                raise DeliveryError(
                    f"{sent.readings_failed} readings of tick {tick_number} were not delivered after "
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
    """Write ``days`` of hourly history straight into the lake's ``dt=/hour=`` partitions.

    History is keyed by event time (Firehose stamps arrival time, so it cannot carry
    history). Simulates from ``end - days`` to ``end``; returns the final state, from which
    the live simulation continues.
    """
    if days < 1:
        raise ValueError("backfill needs at least one day")
    started = time.perf_counter()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    state = initial_state(catalog, start)
    encoder = ReadingEncoder(catalog, state.reorder_point, state.target_stock)
    run_id = uuid.uuid4().hex[:12]
    hours = days * 24
    report = IngestReport(stores=catalog.shape[0], products=catalog.shape[1])

    def write(hour_index: int, observed_at: datetime, payload: bytes) -> None:
        key = (
            f"{INVENTORY_PREFIX}dt={observed_at:%Y-%m-%d}/hour={observed_at:%H}/"
            f"backfill-{run_id}-{hour_index:05d}.json.gz"
        )
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(payload, compresslevel=1, mtime=0))

    with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
        futures = []
        for hour_index in range(hours):
            tick = advance(state, 1.0)
            if (hour_index + 1) % every_hours:
                continue
            observed_at = state.sim_clock - timedelta(minutes=1)  # inside the hour it describes
            state.last_observed_at = observed_at
            batch = encoder.encode(tick.on_hand, tick.units_sold, observed_at)
            futures.append(pool.submit(write, hour_index, observed_at, batch.data))
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
    store: SimulationStore, config: SimulationConfig, clock: Clock = utc_now
) -> tuple[Catalog, SimulationState, str | None]:
    """The catalog and the state to continue from (a new one on the first run)."""
    catalog = build_catalog(config.stores, config.products, config.seed)
    state, etag = store.load(config)
    if state is None:
        state = initial_state(catalog, clock())
    elif state.shape != catalog.shape:
        raise StoreOpsError(f"saved state {config.state_key} has shape {state.shape}, expected {catalog.shape}")
    return catalog, state, etag
