"""Flow ``store-data``: simulated stores stream inventory readings into Firehose.

python -m flows.generate [--stores N] [--products M] [--seed S] [--as-of T]
    [--backfill-days D] [--backfill-every-hours N] [--wait] [--json]

Each run takes one reading per store-product at its time (``as_of``, default now): the sales
since the previous reading (exactly the time elapsed, 6 h at most after a long pause), then
the truck stops that arrived by then. On the deployment's every-minute schedule each reading
reports about a minute of sales. With ``wait`` the run returns only when Athena can read every
reading it sent (Firehose buffers them for up to its buffer interval, 60 s by default), so a
plan that follows sees them. The stores are worked through a chunk at a time (load its state,
read, send, save), so memory grows with a chunk, not with the catalog; ``peak_rss_mb`` in the
result is the process's peak resident memory.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from functools import partial
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.cli import FlowCli, Rows, Table
from flows.failures import fail_in_one_line
from flows.run_names import store_data_run_name
from storeops.clock import WallClock, hour_floor
from storeops.exceptions import DeliveryError
from storeops.parameters import (
    PRODUCTS,
    SEED,
    STORES,
    AsOf,
    BackfillDays,
    BackfillEveryHours,
    Products,
    Seed,
    Stores,
    Wait,
)
from storeops.stores.firehose import FirehoseSender
from storeops.stores.readings import IngestReport
from storeops.stores.state import SimulationConfig, SimulationStore
from storeops.stores.truth import write_truth
from tasks.artifacts import figure
from tasks.environment import load_environment
from tasks.ingest import (
    backfill_history,
    deliveries_from,
    load_simulation,
    publish_directory,
    save_simulation,
    send_readings,
    wait_until_queryable,
)


@flow(
    name="store-data",
    description="Simulate store inventory and stream it into the data lake.",
    flow_run_name=store_data_run_name,
)
@fail_in_one_line
def store_data(
    stores: Stores = STORES,
    products: Products = PRODUCTS,
    seed: Seed = SEED,
    as_of: AsOf = None,
    backfill_days: BackfillDays = 0,
    backfill_every_hours: BackfillEveryHours = 1,
    wait: Wait = False,
) -> dict[str, Any]:
    """Take the stores' next reading at ``as_of`` (default now), after an optional backfill; with
    ``wait``, return once Athena can read all of it.
    """
    now = as_of or WallClock().now()
    env = load_environment()
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    config = SimulationConfig(stores, products, seed)
    simulation = load_simulation(SimulationStore(s3, bucket), config, now)
    fresh = simulation.manifest.ticks == 0  # its first run: publish what the planner may know of it
    backfilled: IngestReport | None = None
    if backfill_days:
        simulation, backfilled = backfill_history(
            simulation, s3, bucket, backfill_days, hour_floor(now), backfill_every_hours
        )
    publish_directory(s3, bucket, simulation, fresh or bool(backfill_days))
    sender = FirehoseSender(env.clients.client("firehose"), env.resources.delivery_stream)
    record = partial(write_truth, s3, bucket)
    try:
        report = send_readings(simulation, sender, [now], deliveries_from(s3, bucket, simulation), record)
    except DeliveryError:
        save_simulation(simulation)  # the chunks read so far were saved (their sales happened): record it
        raise
    save_simulation(simulation)
    if backfilled:
        report.backfill_rows, report.backfill_objects = backfilled.backfill_rows, backfilled.backfill_objects
    result = report.as_dict()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    observed_at = simulation.manifest.last_observed_at
    if wait and report.rows_sent and observed_at is not None:
        landing = wait_until_queryable(env.clients, env.resources, observed_at, report.rows_sent)
        result["queryable_after_seconds"] = landing.seconds
    _publish(report, env.resources.delivery_stream)
    return result


def summary_rows(report: Mapping[str, Any]) -> Rows:
    """What a run sent (``IngestReport.as_dict()``): its ``store-data-summary`` artifact's rows and its CLI table."""
    return [
        {"metric": "readings sent", "value": report["rows_sent"]},
        {"metric": "hours of sales they cover", "value": round(report["hours_simulated"], 4)},
        {"metric": "units sold", "value": report["units_sold"]},
        {"metric": "units lost to empty shelves (the simulator's record)", "value": report["units_lost"]},
        {"metric": "units expired (written off)", "value": report["units_expired"]},
        {"metric": "units delivered by trucks", "value": report["units_delivered"]},
        {"metric": "units refused (no room on the shelf)", "value": report["units_refused"]},
        {"metric": "readings rejected", "value": report["rows_rejected"]},
        {"metric": "readings not delivered", "value": report["rows_failed"]},
        {"metric": "Firehose records", "value": report["firehose_records"]},
        {"metric": "Firehose calls", "value": report["firehose_calls"]},
        {"metric": "billed bytes (5 KB rounding)", "value": report["billed_bytes"]},
        {"metric": "JSON bytes", "value": report["raw_bytes"]},
        {"metric": "readings/s", "value": round(report["readings_per_s"])},
        {"metric": "backfilled readings", "value": report["backfill_rows"]},
        {"metric": "simulated clock", "value": report["sim_clock"]},
    ]


def _publish(report: IngestReport, stream: str) -> None:
    rows = summary_rows(report.as_dict())
    create_table_artifact(
        key="store-data-summary",
        table=[{"metric": r["metric"], "value": figure(r["value"])} for r in rows],
        description=f"What this store-data run sent into Firehose stream {stream} ({report.rows_sent:,} readings)",
    )
    get_run_logger().info("run summary: %s", {r["metric"]: r["value"] for r in rows})


def _tables(result: dict[str, Any]) -> list[Table]:
    extra = {"peak memory (RSS, MB)": result["peak_rss_mb"], "seconds": result["seconds"]}
    if "queryable_after_seconds" in result:
        extra["queryable in Athena after (s)"] = result["queryable_after_seconds"]
    rows = [{"metric": r["metric"], "value": figure(r["value"])} for r in summary_rows(result)]
    rows += [{"metric": k, "value": figure(v)} for k, v in extra.items()]
    return [Table(f"store-data: reading at {result['sim_clock']}", rows)]


CLI = FlowCli(store_data, "python -m flows.generate", _tables)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
