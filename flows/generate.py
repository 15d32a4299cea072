"""Flow ``store-data``: simulated stores stream inventory readings into Firehose.

python -m flows.generate --stores N --products M --ticks T [--seed S]
    [--hours-per-tick H] [--backfill-days D] [--json]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, ValidationError

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.prefect_api import prefect_api
from storeops.cli import emit_json, non_negative_int, positive_float, positive_int, print_summary, run_cli
from storeops.exceptions import DeliveryError, ValidationFailed, first_validation_error
from storeops.settings import load_settings
from storeops.stores.firehose import FirehoseSender
from storeops.stores.ingest import IngestReport, SimulationConfig, SimulationStore
from tasks.ingest import backfill_history, load_simulation, receive_deliveries, save_simulation, stream_readings


class GenerateRequest(BaseModel):
    """The flow's parameters, validated (Prefect UI runs get the same checks as the CLI)."""

    stores: int = Field(100, ge=1, le=10_000)
    products: int = Field(50, ge=1, le=5_000)
    ticks: int = Field(1, ge=1, le=10_000)
    seed: int = Field(7, ge=0)
    hours_per_tick: float = Field(1.0, gt=0, le=24 * 7)
    backfill_days: int = Field(0, ge=0, le=400)
    backfill_every_hours: int = Field(1, ge=1, le=24)

    @classmethod
    def checked(cls, **values: Any) -> GenerateRequest:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {first_validation_error(exc)}",
                hint="see `python -m flows.generate --help`",
            ) from None


@flow(name="store-data", description="Simulate store inventory and stream it into the data lake.")
def store_data(
    stores: int = 100,
    products: int = 50,
    ticks: int = 1,
    seed: int = 7,
    hours_per_tick: float = 1.0,
    backfill_days: int = 0,
    backfill_every_hours: int = 1,
) -> dict[str, Any]:
    """Continue the persisted simulation for ``ticks`` ticks (after an optional backfill)."""
    request = GenerateRequest.checked(
        stores=stores,
        products=products,
        ticks=ticks,
        seed=seed,
        hours_per_tick=hours_per_tick,
        backfill_days=backfill_days,
        backfill_every_hours=backfill_every_hours,
    )
    env = prepare(load_settings())
    s3 = env.clients.client("s3")
    store = SimulationStore(s3, env.resources.data_lake_bucket)
    config = SimulationConfig(request.stores, request.products, request.seed, request.hours_per_tick)
    catalog, state, etag = load_simulation(store, config)
    backfilled: IngestReport | None = None
    if request.backfill_days:
        state, backfilled = backfill_history(
            catalog,
            s3,
            env.resources.data_lake_bucket,
            request.backfill_days,
            datetime.now(UTC),
            request.backfill_every_hours,
        )
    delivered = receive_deliveries(s3, env.resources.data_lake_bucket, catalog, state, datetime.now(UTC))
    sender = FirehoseSender(env.clients.client("firehose"), env.resources.delivery_stream)
    try:
        report = stream_readings(catalog, state, sender, request.ticks, request.hours_per_tick)
    except DeliveryError:
        save_simulation(store, config, state, etag)  # the sales happened: do not replay them
        raise
    save_simulation(store, config, state, etag)
    if backfilled:
        report.backfill_rows, report.backfill_objects = backfilled.backfill_rows, backfilled.backfill_objects
    report.units_delivered = delivered
    _publish(report, env.resources.delivery_stream)
    return report.as_dict()


def _publish(report: IngestReport, stream: str) -> None:
    rows: list[dict[str, Any]] = [
        {"metric": "readings sent", "value": report.rows_sent},
        {"metric": "readings rejected", "value": report.rows_rejected},
        {"metric": "readings not delivered", "value": report.rows_failed},
        {"metric": "Firehose records", "value": report.firehose_records},
        {"metric": "Firehose calls", "value": report.firehose_calls},
        {"metric": "billed bytes (5 KB rounding)", "value": report.billed_bytes},
        {"metric": "JSON bytes", "value": report.raw_bytes},
        {"metric": "readings/s", "value": round(report.readings_per_s)},
        {"metric": "backfilled readings", "value": report.backfill_rows},
        {"metric": "units delivered by trucks", "value": report.units_delivered},
        {"metric": "simulated clock", "value": report.sim_clock},
    ]
    create_table_artifact(
        key="store-data-summary", table=rows, description=f"store-data run into Firehose stream {stream}"
    )
    get_run_logger().info("run summary: %s", {r["metric"]: r["value"] for r in rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.generate",
        description="Simulate N stores x M products for T ticks and stream the readings into Firehose.",
    )
    parser.add_argument("--stores", type=positive_int, default=100, help="number of stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--ticks", type=positive_int, default=1, help="ticks to simulate (default 1)")
    parser.add_argument("--seed", type=non_negative_int, default=7, help="simulation seed (default 7)")
    parser.add_argument(
        "--hours-per-tick", type=positive_float, default=1.0, help="simulated hours of demand per tick (default 1)"
    )
    parser.add_argument(
        "--backfill-days", type=non_negative_int, default=0, help="write D days of history into the lake first"
    )
    parser.add_argument(
        "--backfill-every-hours", type=positive_int, default=1, help="one backfilled reading per N hours (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    parameters: dict[str, Any] = {
        "stores": args.stores,
        "products": args.products,
        "ticks": args.ticks,
        "seed": args.seed,
        "hours_per_tick": args.hours_per_tick,
        "backfill_days": args.backfill_days,
        "backfill_every_hours": args.backfill_every_hours,
    }
    GenerateRequest.checked(**parameters)
    load_settings()  # fail on bad settings before Prefect starts
    quiet_expected_tracebacks()
    with prefect_api():
        result = store_data(**parameters)
    print_summary(
        f"store-data: {args.stores} stores x {args.products} products, {result['ticks']} ticks",
        [
            ("readings sent", result["rows_sent"]),
            ("readings rejected", result["rows_rejected"]),
            ("readings not delivered", result["rows_failed"]),
            ("Firehose records", result["firehose_records"]),
            ("billed bytes", result["billed_bytes"]),
            ("backfilled readings", result["backfill_rows"]),
            ("units delivered by trucks", result["units_delivered"]),
            ("readings/s", f"{result['readings_per_s']:,.0f}"),
            ("seconds", f"{result['seconds']:.2f}"),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    run_cli(main)
