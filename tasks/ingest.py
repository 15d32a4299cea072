"""Tasks of the ``store-data`` flow. Each wraps one plain function of ``storeops.stores`` (``state``,
``readings``, ``backfill``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from storeops.athena import inventory_query
from storeops.aws import AwsClients, StackResources
from storeops.directory import publish_store_directory
from storeops.exceptions import NotQueryable
from storeops.stores.backfill import backfill
from storeops.stores.deliveries import LedgerDeliveries
from storeops.stores.firehose import FirehoseSender
from storeops.stores.landing import Landing, landing_deadline, wait_until_landed
from storeops.stores.readings import Deliveries, IngestReport, TruthSink, run_readings
from storeops.stores.reference import catalog_name, publish_reference, published_catalog
from storeops.stores.state import Simulation, SimulationConfig, SimulationStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _log_progress(label: str, total: int, bar: bool = False) -> Callable[[int, int], None]:
    """Progress every 10% in the run log (and, with ``bar``, as a progress artifact in the UI)."""
    logger = get_run_logger()
    step = max(1, total // 10)
    artifact_id = cast(UUID, create_progress_artifact(progress=0.0, description=label)) if bar else None

    def report(done: int, of: int) -> None:
        if done == of or done % step == 0:
            logger.info("%s: %d/%d (%.0f%%)", label, done, of, 100.0 * done / of)
            if artifact_id is not None:
                update_progress_artifact(artifact_id=artifact_id, progress=100.0 * done / of)

    return report


@task(name="load-simulation", cache_policy=NO_CACHE)
def load_simulation(store: SimulationStore, config: SimulationConfig, now: datetime) -> Simulation:
    """The simulation's manifest (its chunks load one at a time as the readings reach them)."""
    simulation = store.open(config, now)
    manifest = simulation.manifest
    get_run_logger().info(
        "simulation %s: %d stores x %d products in %d chunks of up to %d stores, tick %d, simulated clock %s",
        config.prefix,
        config.stores,
        config.products,
        simulation.layout.count,
        simulation.layout.chunk_stores,
        manifest.ticks,
        manifest.sim_clock.isoformat() if manifest.sim_clock else "new",
    )
    return simulation


# No task-level retries: the sender retries exactly the failed entries; a task retry would resend successes.
@task(name="stream-readings", cache_policy=NO_CACHE)
def send_readings(
    simulation: Simulation, sender: FirehoseSender, times: list[datetime], deliver: Deliveries, record: TruthSink
) -> IngestReport:
    """A reading at each time (the live flow: one, now) into Firehose, a chunk of stores at a time
    (each chunk's state is saved once its readings are sent); the simulator's own record to ``record``."""
    steps = simulation.layout.count * len(times)
    report = run_readings(
        simulation,
        sender,
        times,
        deliver=deliver,
        progress=_log_progress("chunk readings sent", steps),
        record=record,
    )
    get_run_logger().info(
        "sent %d readings covering %.3f h in %d Firehose records (%d calls, %d retried) in %.2f s: %.0f readings/s; "
        "%d units sold, %d lost, %d delivered; %d rejected %s; billed %.1f KB for %.1f KB of JSON",
        report.rows_sent,
        report.hours_simulated,
        report.firehose_records,
        report.firehose_calls,
        report.retried_records,
        report.seconds,
        report.readings_per_s,
        report.units_sold,
        report.units_lost,
        report.units_delivered,
        report.rows_rejected,
        report.rejected_reasons or "",
        report.billed_bytes / 1024,
        report.raw_bytes / 1024,
    )
    return report


def deliveries_from(s3: S3Client, bucket: str, simulation: Simulation) -> LedgerDeliveries:
    """The stores' side of the trucks: at each reading, every chunk adds its stores' stops that arrived
    by then (once each); the ledger is read once per reading time."""
    return LedgerDeliveries(s3, bucket, simulation.catalog, simulation.manifest.deliveries)


@task(name="backfill-history", cache_policy=NO_CACHE)
def backfill_history(
    simulation: Simulation, s3: S3Client, bucket: str, days: int, end: datetime, every_hours: int
) -> tuple[Simulation, IngestReport]:
    """History into the lake by event time, a chunk of stores at a time; each chunk's final state is saved."""
    simulation, report = backfill(
        simulation.catalog,
        s3,
        bucket,
        days,
        end=end,
        every_hours=every_hours,
        progress=_log_progress("backfilled chunk-hours", simulation.layout.count * days * 24, bar=True),
        simulation=simulation,
    )
    get_run_logger().info(
        "backfilled %d readings in %d objects over %d days in %.1f s",
        report.backfill_rows,
        report.backfill_objects,
        days,
        report.seconds,
    )
    return simulation, report


@task(name="save-simulation", cache_policy=NO_CACHE)
def save_simulation(simulation: Simulation) -> None:
    """The manifest (the chunks were saved as the readings went): how far the simulation got."""
    simulation.save_manifest()


@task(name="publish-store-directory", cache_policy=NO_CACHE)
def publish_directory(s3: S3Client, bucket: str, simulation: Simulation, fresh: bool) -> None:
    """Where the stores are, for the trucks; for a ``fresh`` simulation (its first run), or one whose reference
    tables are not the lake's, also what the planner may know of its stores and products (the product
    master, the promotion plan, the planogram)."""
    publish_store_directory(s3, bucket, simulation.catalog.directory())
    if fresh or published_catalog(s3, bucket) != catalog_name(simulation.catalog):
        published = publish_reference(s3, bucket, simulation)
        get_run_logger().info("published the reference tables: %s", published)


@task(name="wait-until-queryable", cache_policy=NO_CACHE)
def wait_until_queryable(
    clients: AwsClients, resources: StackResources, observed_at: datetime, expected: int
) -> Landing:
    """Wait until Athena reads every reading taken at ``observed_at`` (Firehose buffers them first)."""
    deadline = landing_deadline(resources.firehose_buffer_seconds)
    landing = wait_until_landed(clients, inventory_query(resources), observed_at, expected, deadline)
    if not landing.complete:
        raise NotQueryable(
            f"only {landing.distinct_readings} of {expected} readings taken at {landing.observed_at} are queryable "
            f"after {landing.seconds:.0f} s (Firehose buffers up to {resources.firehose_buffer_seconds} s)",
            hint="check the delivery stream's errors/ prefix in the lake and its CloudWatch metrics, then run again",
        )
    get_run_logger().info(
        "all %d readings queryable after %.1f s (%d Athena polls)", expected, landing.seconds, landing.polls
    )
    return landing
