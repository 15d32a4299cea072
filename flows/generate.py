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

import argparse
import resource
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import store_data_run_name
from storeops.cli import emit_json, iso_time, non_negative_int, positive_int, print_summary, run_cli
from storeops.clock import WallClock, hour_floor
from storeops.exceptions import DeliveryError, ValidationFailed, first_validation_error
from storeops.settings import load_settings
from storeops.stores.firehose import FirehoseSender
from storeops.stores.readings import IngestReport
from storeops.stores.state import SimulationConfig, SimulationStore
from storeops.stores.truth import write_truth
from tasks.artifacts import figure
from tasks.ingest import (
    backfill_history,
    deliveries_from,
    load_simulation,
    publish_directory,
    save_simulation,
    send_readings,
    wait_until_queryable,
)

# The parameters' limits: in the flow's signature (the Run form, enforced by the deployment) and
# in GenerateRequest (the same checks for a direct call or the CLI).
Stores = Annotated[int, Field(ge=1, le=10_000)]
Products = Annotated[int, Field(ge=1, le=5_000)]
Seed = Annotated[int, Field(ge=0)]
BackfillDays = Annotated[int, Field(ge=0, le=400)]
BackfillEveryHours = Annotated[int, Field(ge=1, le=24)]


class GenerateRequest(BaseModel):
    """The flow's parameters, validated (Prefect UI runs get the same checks as the CLI)."""

    stores: Stores = 100
    products: Products = 50
    seed: Seed = 7
    as_of: AwareDatetime | None = None
    backfill_days: BackfillDays = 0
    backfill_every_hours: BackfillEveryHours = 1
    wait: bool = False

    @classmethod
    def checked(cls, **values: Any) -> GenerateRequest:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {first_validation_error(exc)}",
                hint="see `python -m flows.generate --help`",
            ) from None


@flow(
    name="store-data",
    description="Simulate store inventory and stream it into the data lake.",
    flow_run_name=store_data_run_name,
)
@fail_in_one_line
def store_data(
    stores: Stores = 100,
    products: Products = 50,
    seed: Seed = 7,
    as_of: datetime | None = None,
    backfill_days: BackfillDays = 0,
    backfill_every_hours: BackfillEveryHours = 1,
    wait: bool = False,
) -> dict[str, Any]:
    """Take the stores' next reading at ``as_of`` (default now), after an optional backfill; with
    ``wait``, return once Athena can read all of it.

    Args:
        stores: Simulated stores (1 to 10,000).
        products: Products per store (1 to 5,000).
        seed: The simulation's seed: the same seed, the same stores and customers.
        as_of: Reading time with a time zone, e.g. 2026-11-26T12:00:00Z; empty means now.
        backfill_days: First write this many days of hourly history into the lake (0 to 400).
        backfill_every_hours: Hours between backfilled readings (1 to 24).
        wait: Return only once Athena counts every reading sent (up to Firehose's buffer plus 3 minutes).
    """
    request = GenerateRequest.checked(
        stores=stores,
        products=products,
        seed=seed,
        as_of=as_of,
        backfill_days=backfill_days,
        backfill_every_hours=backfill_every_hours,
        wait=wait,
    )
    now = request.as_of or WallClock().now()
    env = prepare(load_settings())
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    config = SimulationConfig(request.stores, request.products, request.seed)
    simulation = load_simulation(SimulationStore(s3, bucket), config, now)
    fresh = simulation.manifest.ticks == 0  # its first run: publish what the planner may know of it
    backfilled: IngestReport | None = None
    if request.backfill_days:
        simulation, backfilled = backfill_history(
            simulation, s3, bucket, request.backfill_days, hour_floor(now), request.backfill_every_hours
        )
    publish_directory(s3, bucket, simulation, fresh or bool(request.backfill_days))
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
    if request.wait and report.rows_sent and observed_at is not None:
        landing = wait_until_queryable(env.clients, env.resources, observed_at, report.rows_sent)
        result["queryable_after_seconds"] = landing.seconds
    _publish(report, env.resources.delivery_stream)
    return result


def _publish(report: IngestReport, stream: str) -> None:
    rows: list[dict[str, Any]] = [
        {"metric": "readings sent", "value": report.rows_sent},
        {"metric": "hours of sales they cover", "value": round(report.hours_simulated, 4)},
        {"metric": "units sold", "value": report.units_sold},
        {"metric": "units lost to empty shelves (the simulator's record)", "value": report.units_lost},
        {"metric": "units expired (written off)", "value": report.units_expired},
        {"metric": "units delivered by trucks", "value": report.units_delivered},
        {"metric": "units refused (no room on the shelf)", "value": report.units_refused},
        {"metric": "readings rejected", "value": report.rows_rejected},
        {"metric": "readings not delivered", "value": report.rows_failed},
        {"metric": "Firehose records", "value": report.firehose_records},
        {"metric": "Firehose calls", "value": report.firehose_calls},
        {"metric": "billed bytes (5 KB rounding)", "value": report.billed_bytes},
        {"metric": "JSON bytes", "value": report.raw_bytes},
        {"metric": "readings/s", "value": round(report.readings_per_s)},
        {"metric": "backfilled readings", "value": report.backfill_rows},
        {"metric": "simulated clock", "value": report.sim_clock},
    ]
    create_table_artifact(
        key="store-data-summary",
        table=[{"metric": r["metric"], "value": figure(r["value"])} for r in rows],
        description=f"What this store-data run sent into Firehose stream {stream} ({report.rows_sent:,} readings)",
    )
    get_run_logger().info("run summary: %s", {r["metric"]: r["value"] for r in rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.generate",
        description="Take the simulated stores' next reading (sales since the previous one) into Firehose.",
    )
    parser.add_argument("--stores", type=positive_int, default=100, help="number of stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--seed", type=non_negative_int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--as-of", type=iso_time, help="time of the reading, ISO-8601 with time zone (default: now)")
    parser.add_argument(
        "--backfill-days", type=non_negative_int, default=0, help="write D days of history into the lake first"
    )
    parser.add_argument(
        "--backfill-every-hours", type=positive_int, default=1, help="one backfilled reading per N hours (default 1)"
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="return once Athena can read every reading sent (Firehose buffers them up to its buffer interval)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    parameters: dict[str, Any] = {
        "stores": args.stores,
        "products": args.products,
        "seed": args.seed,
        "as_of": args.as_of,
        "backfill_days": args.backfill_days,
        "backfill_every_hours": args.backfill_every_hours,
        "wait": args.wait,
    }
    GenerateRequest.checked(**parameters)
    settings = load_settings()  # fail on bad settings before Prefect starts
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        result = store_data(**parameters)
    print_summary(
        f"store-data: {args.stores} stores x {args.products} products, reading at {result['sim_clock']}",
        [
            ("readings sent", result["rows_sent"]),
            ("hours of sales they cover", f"{result['hours_simulated']:.3f}"),
            ("units sold", result["units_sold"]),
            ("units lost to empty shelves", result["units_lost"]),
            ("units delivered by trucks", result["units_delivered"]),
            ("readings rejected", result["rows_rejected"]),
            ("readings not delivered", result["rows_failed"]),
            ("Firehose records", result["firehose_records"]),
            ("billed bytes", result["billed_bytes"]),
            ("backfilled readings", result["backfill_rows"]),
            ("readings/s", f"{result['readings_per_s']:,.0f}"),
            ("peak memory (RSS)", f"{result['peak_rss_mb']:,.0f} MB"),
            *(
                [("queryable in Athena after", f"{result['queryable_after_seconds']:.1f} s")]
                if "queryable_after_seconds" in result
                else []
            ),
            ("seconds", f"{result['seconds']:.2f}"),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    run_cli(main)
