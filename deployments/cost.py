"""What storeops costs a month on AWS, by service, for a chain of stores x products at the deployed cadence.

    python -m deployments.cost --stores 2000 --products 1000 [--months 12] [--case typical|worst] [--json]

Prices come from one file, ``deployments/prices.toml`` (us-east-1 list prices with their unit and source page;
Athena's is ``storeops.athena.ATHENA_USD_PER_TB``). Nothing about the cadence is retyped: the schedules are read
from ``prefect.yaml`` (a reading per store-product per store-data run, a plan per plan-shortages run, ...), the
Firehose buffer, the planning function's memory and the retention rules from ``deployments/template.yaml``'s
defaults, Athena's bytes per query from ``storeops.planning.scan_budget``, and a run's Firehose records from the
project's own encoder and packer (one real chunk of readings, encoded and gzipped as the sender does).

``monthly_bill`` is pure: sizes, prices, cadence and the measured samples in, line items out (service, item,
quantity, unit, unit price, USD a month). Storage of what is kept for good (the rollups, the forecast, the ledger
without a retention rule) is priced as it stands after ``--months`` of history. Decimal units (1 GB = 10^9 B,
as the project's other figures): AWS bills some of these in GiB, so the figures err up by at most 7%.
"""

from __future__ import annotations

import importlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from flows.cli import CliOptions
from storeops.athena import ATHENA_MIN_BYTES
from storeops.cli import emit_json, run_cli
from storeops.contracts.dispatch_order import ORDER_MAX_BYTES
from storeops.dispatch.claims import RETENTION_SECONDS, TRANSACTION_LIMIT
from storeops.dispatch.config import WorkerConfig
from storeops.exceptions import ConfigurationError
from storeops.metrics import HEARTBEAT_EVERY_SECONDS, ROLLUP_LAG, TRUCK_HEARTBEAT
from storeops.parameters import PRODUCTS, STORES, Products, Stores
from storeops.planning.forecast import HISTORY_DAYS, HORIZON_DAYS, MAX_ROLL_DAYS
from storeops.planning.models import ARRIVAL_SPILL, LEDGER_DAYS
from storeops.planning.rollup import CHUNK_ROWS as ROLLUP_PART_ROWS
from storeops.planning.scan_budget import (
    DAILY_PAIR_DAY_BYTES,
    FORECAST_ROW_BYTES,
    LEDGER_BYTES_PER_ORDER,
    ORDERS_PER_PAIR_DAY,
    ROLLED_PAIR_HOUR_BYTES,
    ChainSize,
    scan_bytes,
)
from storeops.settings import project_root
from storeops.sqs import SQS_BATCH, SQS_BATCH_BYTES

PRICES_PATH = Path(__file__).with_name("prices.toml")
TEMPLATE_PATH = Path(__file__).with_name("template.yaml")  # deployments.stack.TEMPLATE_PATH, without its imports
PREFECT_YAML = "prefect.yaml"
# The deployments whose schedules set the cadence, by what they do.
STORE_DATA, PLAN, ROLLUP, FORECAST = "store-data", "plan-shortages", "rollup-hourly", "forecast-daily"
SCHEDULED = (STORE_DATA, PLAN, ROLLUP, FORECAST)
ASSUMED_RAW_RETENTION_DAYS = 35  # until the template has RawReadingsRetentionDays
SQS_CHUNK_BYTES = 64 * 1024  # SQS bills each 64 KB chunk of a payload as one request
ATHENA_RESULT_WRITES = 2  # Athena writes a query's result file and its .metadata
GB = 1e9
Case = Literal["typical", "worst"]


# ------------------------------------------------------------------------------------------------ prices
@dataclass(frozen=True)
class Price:
    """One list price: USD per ``unit``, from ``source`` (a pricing page), for ``region``, read on ``read``."""

    name: str
    usd: float
    unit: str
    source: str
    region: str
    read: str
    defined_in: str = ""  # a constant of the code that holds the figure (one definition), if not this file
    note: str = ""


@dataclass(frozen=True)
class TaskSize:
    """An ECS Fargate task's size, and whether it runs all month."""

    vcpu: float
    memory_gb: float
    always_on: bool
    what: str


@dataclass(frozen=True)
class PriceBook:
    """Everything ``prices.toml`` holds: the prices, the flows' task sizes and the workload figures."""

    prices: dict[str, Price]
    compute: dict[str, TaskSize]
    workload: dict[str, Any]
    hours_per_month: float

    def __getitem__(self, name: str) -> Price:
        return self.prices[name]

    @property
    def days_per_month(self) -> float:
        return self.hours_per_month / 24


def _constant(path: str) -> float:
    """The value of ``package.module.NAME``."""
    module, _, name = path.rpartition(".")
    return float(getattr(importlib.import_module(module), name))


def load_prices(path: Path = PRICES_PATH) -> PriceBook:
    """The price book in ``path``; a one-line ``ConfigurationError`` naming what is missing."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the prices file {path}: {exc}") from None
    meta = data.get("meta", {})
    prices: dict[str, Price] = {}
    for name, entry in data.get("prices", {}).items():
        missing = [k for k in ("unit", "source") if not entry.get(k)]
        if "usd" not in entry and "defined_in" not in entry:
            missing.append("usd (or defined_in)")
        if missing:
            raise ConfigurationError(f"price {name} in {path} lacks {', '.join(missing)}")
        defined_in = str(entry.get("defined_in", ""))
        prices[name] = Price(
            name=name,
            usd=_constant(defined_in) if defined_in else float(entry["usd"]),
            unit=str(entry["unit"]),
            source=str(entry["source"]),
            region=str(entry.get("region", meta.get("region", ""))),
            read=str(entry.get("read", meta.get("read", ""))),
            defined_in=defined_in,
            note=str(entry.get("note", "")),
        )
    compute = {name: TaskSize(**size) for name, size in data.get("compute", {}).items()}
    return PriceBook(prices, compute, dict(data.get("workload", {})), float(meta.get("hours_per_month", 730)))


# ------------------------------------------------------------------------------------------------ cadence
@dataclass(frozen=True)
class Cadence:
    """What the deployed code does how often, read from prefect.yaml and the template's defaults."""

    runs_per_day: dict[str, float]  # by deployment
    firehose_buffer_seconds: int
    firehose_buffer_mib: int
    planning_memory_mb: int
    raw_retention_days: int
    raw_retention_assumed: bool  # the template has no RawReadingsRetentionDays yet
    ledger_retention_days: int | None  # None: kept for good (no rule)
    athena_results_days: int
    alarms: int | None  # None: the template defines none yet

    @property
    def store_data_minutes(self) -> float:
        """Minutes between two readings of a store-product: one reading per store-data run."""
        return 24 * 60 / self.runs_per_day[STORE_DATA]


def runs_per_day(cron: str) -> float:
    """How many times a day a cron schedule fires, on average over a week."""
    from cronsim import CronSim

    start = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
    end = start + timedelta(days=7)
    count = 0
    for moment in CronSim(cron, start - timedelta(seconds=1)):  # from ``start`` itself
        if moment >= end:
            break
        count += 1
    return count / 7


class _TemplateLoader:
    """Reads CloudFormation YAML with the safe loader; intrinsic functions (``!Ref`` ...) read as None."""

    @staticmethod
    def load(text: str) -> dict[str, Any]:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
        return dict(yaml.load(text, Loader=Loader))  # noqa: S506 - a SafeLoader subclass


def _default(parameters: Mapping[str, Any], name: str) -> int | None:
    entry = parameters.get(name)
    return None if entry is None or "Default" not in entry else int(entry["Default"])


def _expiry_days(bucket: Mapping[str, Any], prefix: str) -> int | None:
    rules = (bucket.get("Properties", {}).get("LifecycleConfiguration") or {}).get("Rules", [])
    for rule in rules:
        filtered = (rule.get("Filter") or {}).get("Prefix")
        if prefix in (rule.get("Prefix"), filtered) and rule.get("ExpirationInDays"):
            return int(rule["ExpirationInDays"])
    return None


def read_cadence(prefect_yaml: Path | None = None, template: Path = TEMPLATE_PATH) -> Cadence:
    """The deployed cadence: the scheduled deployments' runs a day (prefect.yaml) and the template's defaults."""
    import yaml

    prefect_yaml = prefect_yaml or project_root() / PREFECT_YAML
    deployments = {d["name"]: d for d in yaml.safe_load(prefect_yaml.read_text())["deployments"]}
    per_day: dict[str, float] = {}
    for name in SCHEDULED:
        crons = [s["cron"] for s in (deployments.get(name) or {}).get("schedules") or [] if "cron" in s]
        if not crons:
            raise ConfigurationError(f"{prefect_yaml} has no cron schedule for deployment {name}")
        per_day[name] = sum(runs_per_day(c) for c in crons)
    parsed = _TemplateLoader.load(template.read_text())
    parameters, resources = parsed.get("Parameters", {}), parsed.get("Resources", {})
    memory = _default(parameters, "PlanningMemoryMB")
    if memory is None:
        memory = int(resources["PlanningFunction"]["Properties"]["MemorySize"])
    retention = _default(parameters, "RawReadingsRetentionDays")
    lake = resources.get("DataLakeBucket", {})
    ledger_parameter = next((n for n in parameters if n.startswith("Ledger") and n.endswith("RetentionDays")), "")
    ledger = _default(parameters, ledger_parameter) or _expiry_days(lake, "dispatch-ledger/")
    alarms = sum(1 for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm")
    return Cadence(
        runs_per_day=per_day,
        firehose_buffer_seconds=_default(parameters, "FirehoseBufferSeconds") or 0,
        firehose_buffer_mib=_default(parameters, "FirehoseBufferMiB") or 1,
        planning_memory_mb=memory,
        raw_retention_days=retention or ASSUMED_RAW_RETENTION_DAYS,
        raw_retention_assumed=retention is None,
        ledger_retention_days=ledger,
        athena_results_days=_expiry_days(lake, "athena-results/") or 0,
        alarms=alarms or None,
    )


# ------------------------------------------------------------------------------------------------ samples
@dataclass(frozen=True)
class ReadingSample:
    """One store-data run's readings as the project's sender packs them into Firehose records."""

    readings: int
    json_bytes: int  # NDJSON before compression
    payload_bytes: int  # the records' gzip bytes: what lands in S3
    billed_bytes: int  # each record rounded up to 5 KB: what Firehose bills
    records: int

    @property
    def gzip_bytes_per_reading(self) -> float:
        return self.payload_bytes / self.readings


def _measure_chunk(stores: int, products: int) -> tuple[list[int], int]:
    """The Firehose record sizes and the NDJSON bytes of one chunk of ``stores`` x ``products`` readings, taken a
    minute after the previous reading, encoded, cut and gzipped exactly as ``storeops.stores.readings.run_readings``
    does (the same chunk rows, raw chunk bytes and packer)."""
    from storeops.stores.catalog import build_catalog
    from storeops.stores.encoding import ReadingEncoder
    from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, pack
    from storeops.stores.readings import APPROX_LINE_BYTES, reading_columns, take_reading
    from storeops.stores.simulation import initial_state

    catalog = build_catalog(stores, products, 7)
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)  # a weekday's noon: most stores open
    state = initial_state(catalog, start)
    take_reading(state, start + timedelta(minutes=1))
    at = start + timedelta(minutes=2)
    tick, _ = take_reading(state, at)
    columns = reading_columns(catalog, state, tick)
    batches = list(ReadingEncoder(catalog).chunks(columns, at, chunk_rows=DEFAULT_RAW_CHUNK_BYTES // APPROX_LINE_BYTES))
    return [len(record.data) for batch in batches for record in pack(batch)], sum(b.nbytes for b in batches)


def measure_readings(stores: int, products: int) -> ReadingSample:
    """One store-data run's records at this size: each distinct chunk of stores (``ChunkLayout``: at most two
    sizes, of up to ``CHUNK_PAIRS`` readings) is generated, encoded and packed once, and counted as often as the
    layout holds it (about a second at 2,000 x 1,000)."""
    from storeops.stores.firehose import billed_bytes
    from storeops.stores.simulation import ChunkLayout

    measured: dict[int, tuple[list[int], int]] = {}
    sizes: list[int] = []
    json_bytes = 0
    for _, first, stop in ChunkLayout.for_shape(stores, products):
        if stop - first not in measured:
            measured[stop - first] = _measure_chunk(stop - first, products)
        records, raw = measured[stop - first]
        sizes.extend(records)
        json_bytes += raw
    return ReadingSample(
        readings=stores * products,
        json_bytes=json_bytes,
        payload_bytes=sum(sizes),
        billed_bytes=billed_bytes(sizes),
        records=len(sizes),
    )


def measure_request_bytes() -> int:
    """The JSON bytes of one dispatch request as the planner sends it (a catalog's product, realistic ids)."""
    from storeops.contracts.dispatch_request import DispatchRequest, shortage_id
    from storeops.stores.catalog import build_catalog

    product = build_catalog(1, 1, 7).products.iloc[0]
    reading = "2f1c9a4e-8d0b-4c57-9a3e-5b7d1e0c6f21"
    request = DispatchRequest(
        shortage_id=shortage_id("S0001", str(product["product_id"]), reading),
        plan_id="8b3e2f6a-1c4d-4e9b-a7f0-2d5c8e1b9a36",  # an Athena query execution id
        planned_at=datetime(2026, 12, 1, 4, tzinfo=UTC),
        store_id="S0001",
        product_id=str(product["product_id"]),
        product_name=str(product["name"]),
        category=str(product["category"]),
        kind="below_reorder_point",
        priority=2,
        quantity=48,
        case_pack=int(product["case_pack"]),
        on_hand=7,
        reorder_point=18,
        target_stock=55,
        hours_of_cover=11.25,
        reading_event_id=reading,
        observed_at="2026-12-01T03:59:00.000Z",
    )
    return len(request.model_dump_json().encode())


# ------------------------------------------------------------------------------------------------ the bill
@dataclass(frozen=True)
class LineItem:
    """One line of the bill: ``quantity`` ``unit`` a month at ``unit_price`` USD."""

    service: str
    item: str
    quantity: float
    unit: str
    unit_price: float
    prices: tuple[str, ...]  # the price-book entries the unit price comes from
    note: str = ""

    @property
    def usd(self) -> float:
        return self.quantity * self.unit_price

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prices": list(self.prices), "usd": round(self.usd, 4)}


@dataclass
class Bill:
    """A month of storeops on AWS at one chain size."""

    stores: int
    products: int
    months: int
    case: Case
    region: str
    prices_read: str
    lines: list[LineItem]
    figures: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, 0.0) + line.usd
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "stores": self.stores,
            "products": self.products,
            "months_of_history": self.months,
            "case": self.case,
            "region": self.region,
            "prices_read": self.prices_read,
            "total_usd": round(self.total, 2),
            "by_service_usd": {k: round(v, 2) for k, v in self.by_service().items()},
            "lines": [line.as_dict() for line in self.lines],
            "figures": self.figures,
            "assumptions": self.assumptions,
        }


def _fit(points: Iterable[Iterable[float]], pairs: int) -> float:
    """Seconds at ``pairs`` on the line through two measured (pairs, seconds) points; never below the smaller
    measurement (a plan's fixed costs: the function's start, Athena's query latency)."""
    (x0, y0), (x1, y1) = (tuple(p) for p in points)
    return max(y0, y0 + (y1 - y0) / (x1 - x0) * (pairs - x0))


def _task_hour(book: PriceBook, size: TaskSize) -> float:
    return size.vcpu * book["fargate_vcpu"].usd + size.memory_gb * book["fargate_memory"].usd


def monthly_bill(
    stores: int,
    products: int,
    book: PriceBook,
    cadence: Cadence,
    readings: ReadingSample,
    request_bytes: int,
    *,
    months: int = 12,
    case: Case = "typical",
) -> Bill:
    """The month's bill, line by line, for ``stores`` x ``products`` at ``cadence`` (pure: no I/O)."""
    bill = _BillBuilder(stores, products, book, cadence, readings, request_bytes, months, case)
    for section in (
        bill.firehose,
        bill.s3_storage,
        bill.s3_requests,
        bill.athena,
        bill.lambda_,
        bill.sqs,
        bill.dynamodb,
        bill.cloudwatch,
        bill.compute,
        bill.fixed,
    ):
        section()
    return Bill(
        stores=stores,
        products=products,
        months=months,
        case=case,
        region=book["firehose_ingest"].region,
        prices_read=book["firehose_ingest"].read,
        lines=bill.lines,
        figures=bill.figures(),
        assumptions=bill.assumptions(),
    )


@dataclass
class _BillBuilder:
    """The lines of one month's bill, a service at a time; what a later service needs (the plan's seconds,
    the requests a day, the queries...) is kept as it is worked out."""

    stores: int
    products: int
    book: PriceBook
    cadence: Cadence
    readings: ReadingSample
    request_bytes: int
    months: int
    case: Case

    def __post_init__(self) -> None:
        self.w = self.book.workload
        self.pairs, self.days = self.stores * self.products, self.book.days_per_month
        self.hours = self.book.hours_per_month
        self.runs = self.cadence.runs_per_day
        self.history_days = self.months * self.days
        self.store_runs = self.runs[STORE_DATA] * self.days
        self.requests_per_day = self.pairs * ORDERS_PER_PAIR_DAY
        self.share = 1.0 if self.case == "worst" else self.w["plan_raw_share_typical"]
        self.queries_day = {
            "plan": self.runs[PLAN],
            "hourly_rollup": self.runs[ROLLUP],
            "daily_rollup": self.runs[FORECAST],
            "forecast": self.runs[FORECAST],
        }
        self.plan_seconds = _fit(self.w["plan_seconds_measured"], self.pairs)
        self.firehose_objects = 0.0
        self.scanned: dict[str, float] = {}
        self.messages_day = 0.0
        self.lines: list[LineItem] = []

    def line(self, service: str, item: str, quantity: float, unit: str, price: str, note: str = "") -> None:
        """A line of ``quantity`` ``unit`` at the price-book entry ``price`` (counted in thousands or millions
        when the price is per 1,000 or per million)."""
        entry = self.book[price]
        for prefix, per in (("1,000", 1e3), ("million", 1e6)):
            if entry.unit.startswith(prefix):
                quantity, unit = quantity / per, f"{prefix} {unit}"
        self.lines.append(LineItem(service, item, quantity, unit, entry.usd, (price,), note))

    def firehose(self) -> None:
        """A reading per pair per store-data run, packed into records by the project's sender."""
        readings = self.readings
        billed_gb = readings.billed_bytes * self.store_runs / GB
        rounding = readings.billed_bytes / readings.payload_bytes - 1
        self.line(
            "Firehose",
            "ingestion (Direct PUT, 5 KB rounding per record)",
            billed_gb,
            "GB",
            "firehose_ingest",
            f"{self.pairs * self.store_runs:,.0f} readings in {readings.records * self.store_runs:,.0f} records; "
            f"{readings.gzip_bytes_per_reading:.1f} B gzipped a reading, rounding adds {rounding:.1%}",
        )

    def s3_storage(self) -> None:
        cadence, runs, rows, pairs, history_days = (
            self.cadence,
            self.runs,
            self.w["result_row_bytes"],
            self.pairs,
            self.history_days,
        )
        raw_gb = self.readings.payload_bytes * runs[STORE_DATA] * cadence.raw_retention_days / GB
        ledger_days = cadence.ledger_retention_days or history_days
        forecast_rows = pairs * HORIZON_DAYS
        result_bytes_day = (
            pairs
            * (runs[PLAN] * rows["plan"] + runs[ROLLUP] * rows["hourly_rollup"] + runs[FORECAST] * rows["daily_rollup"])
            + runs[FORECAST] * forecast_rows * rows["forecast"]
        )
        kept = f"after {self.months} months of history (kept for good: the forecast learns from it)"
        stored = [
            ("raw readings", raw_gb, f"{cadence.raw_retention_days} days of gzipped NDJSON (RawReadingsRetentionDays)"),
            ("hourly rollup", pairs * 24 * ROLLED_PAIR_HOUR_BYTES * history_days / GB, kept),
            ("daily rollup", pairs * DAILY_PAIR_DAY_BYTES * history_days / GB, kept),
            ("forecast", forecast_rows * FORECAST_ROW_BYTES * runs[FORECAST] * history_days / GB, kept),
            (
                "dispatch ledger",
                self.requests_per_day * LEDGER_BYTES_PER_ORDER * ledger_days / GB,
                f"{ledger_days:.0f} days of requests and window records",
            ),
            (
                "Athena results",
                result_bytes_day * cadence.athena_results_days / GB,
                f"CSV, expired after {cadence.athena_results_days} days (lifecycle rule)",
            ),
        ]
        for item, gb, note in stored:
            self.line("S3", f"storage: {item}", gb, "GB-month", "s3_storage", note)

    def _firehose_objects(self) -> float:
        """The objects Firehose writes in a month: one per buffer interval (more if a buffer fills)."""
        cadence = self.cadence
        if not cadence.firehose_buffer_seconds:  # no buffering: an object per record
            return self.readings.records * self.store_runs
        payload_per_minute = self.readings.payload_bytes * self.runs[STORE_DATA] / (24 * 60)
        interval_bytes = payload_per_minute * cadence.firehose_buffer_seconds / 60
        per_interval = max(1, math.ceil(interval_bytes / (cadence.firehose_buffer_mib * 2**20)))
        return per_interval * self.hours * 3600 / cadence.firehose_buffer_seconds

    def s3_requests(self) -> None:
        runs, days, queries_day = self.runs, self.days, self.queries_day
        self.firehose_objects = self._firehose_objects()
        raw_objects_per_minute = self.firehose_objects / (self.hours * 60)
        parts = math.ceil(self.pairs / ROLLUP_PART_ROWS)  # Parquet files of a rolled hour or day
        ledger_objects_day = max(runs[PLAN], self.requests_per_day / self.w["ledger_requests_per_object"])
        worst_raw_minutes = 60 + ARRIVAL_SPILL.total_seconds() / 60
        gets_per_query = {
            "plan": self.share * worst_raw_minutes * raw_objects_per_minute
            + 2 * parts
            + (LEDGER_DAYS + 1) * ledger_objects_day
            + parts
            + 3,  # reference tables: products, planogram, promotions
            "hourly_rollup": 60 * raw_objects_per_minute,
            "daily_rollup": 24 * parts * (MAX_ROLL_DAYS if self.case == "worst" else 1),
            "forecast": HISTORY_DAYS * parts,
        }
        lists_per_query = {"plan": 2 + 2 + LEDGER_DAYS + 1 + 1 + 3 + 1, "hourly_rollup": 2, "daily_rollup": 25}
        lists_per_query["forecast"] = HISTORY_DAYS + 1
        query_count = sum(queries_day.values()) * days
        writes = days * (
            runs[ROLLUP] * (parts + 1)
            + runs[FORECAST] * ((parts + 1) * (1 + HORIZON_DAYS))
            + ledger_objects_day
            + sum(queries_day.values()) * ATHENA_RESULT_WRITES
        )
        line = self.line
        line(
            "S3", "PUT: Firehose objects", self.firehose_objects, "requests", "s3_put", "one object per buffer interval"
        )
        line("S3", "PUT: rollups, forecast, ledger, Athena results", writes, "requests", "s3_put")
        line(
            "S3",
            "LIST: Athena's partitions, rollup markers",
            days * sum(queries_day[k] * lists_per_query[k] for k in queries_day),
            "requests",
            "s3_put",
        )
        line(
            "S3",
            "GET: Athena reading the lake, the results read",
            days * sum(queries_day[k] * gets_per_query[k] for k in queries_day) + query_count,
            "requests",
            "s3_get",
        )

    def athena(self) -> None:
        """Bytes per query from scan_budget (worst case per query; typical as athena_usd_per_day prices it)."""
        scanned = scan_bytes(ChainSize(self.stores, self.products, self.cadence.store_data_minutes))
        if self.case == "typical":
            scanned = {
                **scanned,
                "plan": scanned["plan"] - (1 - self.share) * scanned["plan_raw"],
                "daily_rollup": scanned["daily_rollup"] / MAX_ROLL_DAYS,
            }
        self.scanned = scanned
        for kind, count in self.queries_day.items():
            billed = max(scanned[kind], ATHENA_MIN_BYTES)
            self.line(
                "Athena",
                f"{kind.replace('_', ' ')} queries",
                count * self.days * billed / 1e12,
                "TB scanned",
                "athena_scan",
                f"{count * self.days:,.0f} queries x {billed / 1e9:,.3f} GB ({self.case}; at least 10 MB a query)",
            )

    def lambda_(self) -> None:
        """A plan per plan-shortages run."""
        invocations = self.runs[PLAN] * self.days
        memory_mb = self.cadence.planning_memory_mb
        self.line(
            "Lambda",
            "planning function compute",
            invocations * self.plan_seconds * (memory_mb / 1024),
            "GB-s",
            "lambda_compute",
            f"{invocations:,.0f} plans x {self.plan_seconds:,.1f} s x {memory_mb:,} MB",
        )
        self.line("Lambda", "planning function requests", invocations, "requests", "lambda_requests")

    def sqs(self) -> None:
        """A store's requests of the day in its order (several messages past ORDER_MAX_BYTES)."""
        w, days = self.w, self.days
        order_bytes = self.products * ORDERS_PER_PAIR_DAY / w["orders_per_store_day"] * (self.request_bytes + 1)
        messages_per_order = max(1, math.ceil(order_bytes / ORDER_MAX_BYTES))
        self.messages_day = messages_day = self.stores * w["orders_per_store_day"] * messages_per_order
        message_bytes = order_bytes / messages_per_order
        per_call = max(1, min(SQS_BATCH, int(SQS_BATCH_BYTES // max(1.0, message_bytes))))
        sends = math.ceil(messages_day / per_call) * math.ceil(per_call * message_bytes / SQS_CHUNK_BYTES)
        receives = messages_day * math.ceil(message_bytes / SQS_CHUNK_BYTES)
        worker = WorkerConfig(queue_url="", dead_letter_queue_url="", bucket="", claims_table="")
        idle_polls = 86_400 / min(worker.wait_seconds, worker.window_seconds)
        sqs_note = f"{messages_day:,.0f} order messages a day of ~{message_bytes / 1e3:,.1f} KB"
        self.line("SQS", "SendMessageBatch (64 KB chunks)", sends * days, "requests", "sqs_requests", sqs_note)
        self.line("SQS", "ReceiveMessage with orders (64 KB chunks)", receives * days, "requests", "sqs_requests")
        self.line(
            "SQS",
            "ReceiveMessage polls of the idle truck run",
            idle_polls * days,
            "requests",
            "sqs_requests",
            f"one every {min(worker.wait_seconds, worker.window_seconds):g} s (storeops.dispatch.config)",
        )
        self.line("SQS", "DeleteMessageBatch", math.ceil(messages_day / SQS_BATCH) * days, "requests", "sqs_requests")

    def dynamodb(self) -> None:
        """A claim per request (transactional put: 2 units), its mark as dispatched (1 unit)."""
        claim_days = RETENTION_SECONDS / 86_400
        claims_gb = self.requests_per_day * claim_days * self.w["claim_item_bytes"] / GB
        self.line(
            "DynamoDB",
            "claims: write request units",
            self.requests_per_day * 3 * self.days,
            "WRU",
            "dynamodb_write",
            f"{self.requests_per_day:,.0f} requests a day x (2 transactional + 1 mark), "
            f"{TRANSACTION_LIMIT} a transaction",
        )
        self.line(
            "DynamoDB", "claims: storage", claims_gb, "GB-month", "dynamodb_storage", f"TTL {claim_days:.0f} days"
        )
        self.line("DynamoDB", "claims: point-in-time recovery", claims_gb, "GB-month", "dynamodb_pitr")

    def cloudwatch(self) -> None:
        w, runs, line = self.w, self.runs, self.line
        alarms = self.cadence.alarms or w["default_alarms"]
        line(
            "CloudWatch",
            "alarms",
            alarms,
            "alarms",
            "cloudwatch_alarm",
            "in the template" if self.cadence.alarms else "assumed: the template defines none yet",
        )
        custom = (TRUCK_HEARTBEAT, ROLLUP_LAG)  # storeops.metrics: a heartbeat a minute at most, a lag per rollup run
        line("CloudWatch", "custom metrics", len(custom), "metrics", "cloudwatch_metric", ", ".join(custom))
        puts = (3600 / HEARTBEAT_EVERY_SECONDS + runs[ROLLUP] / 24) * self.hours
        line("CloudWatch", "PutMetricData", puts, "requests", "cloudwatch_put_metric_data", "heartbeat, rollup lag")
        flow_runs_day = runs[PLAN] + runs[ROLLUP] + runs[FORECAST]
        logs_gb = (
            self.days * (runs[PLAN] * w["log_bytes_per_plan"] + flow_runs_day * w["log_bytes_per_flow_run"])
            + self.hours * w["log_bytes_per_truck_hour"]
        ) / GB
        line("CloudWatch", "logs ingested", logs_gb, "GB", "cloudwatch_logs_ingest", "estimate")
        line("CloudWatch", "logs stored (30-day retention)", logs_gb, "GB-month", "cloudwatch_logs_storage")

    def compute(self) -> None:
        """The flows' compute on ECS Fargate, and the public addresses of its tasks."""
        book, w, runs, days = self.book, self.w, self.runs, self.days
        rollup_seconds = self.pairs * w["rollup_seconds_measured"][1] / w["rollup_seconds_measured"][0]
        run_seconds = {PLAN: self.plan_seconds, ROLLUP: rollup_seconds, FORECAST: self.plan_seconds}
        task_hours = {name: self.hours for name, task_size in book.compute.items() if task_size.always_on}
        for name, seconds in run_seconds.items():
            task_hours[name] = runs[name] * days * max(60.0, w["flow_task_overhead_seconds"] + seconds) / 3600
        for name, task_hours_month in task_hours.items():
            task_size = book.compute.get(name) or book.compute["flow_run"]
            self.lines.append(
                LineItem(
                    "ECS Fargate",
                    f"{name} ({task_size.vcpu:g} vCPU, {task_size.memory_gb:g} GB)",
                    task_hours_month,
                    "task-hours",
                    _task_hour(book, task_size),
                    ("fargate_vcpu", "fargate_memory"),
                    "always on" if task_size.always_on else f"{runs[name] * days:,.0f} runs",
                )
            )
        self.line(
            "VPC",
            "public IPv4 addresses of the tasks",
            sum(task_hours.values()),
            "address-hours",
            "public_ipv4",
            "tasks in public subnets; private subnets need a NAT gateway instead (not priced)",
        )

    def fixed(self) -> None:
        """The image, the simulator (not in production), and the monthly flat fees."""
        book, line = self.book, self.line
        line("ECR", "the flows' image", self.w["image_gb"], "GB-month", "ecr_storage", "estimate")
        self.lines.append(
            LineItem(
                "ECS Fargate",
                "store-data (the simulator): not in production",
                0,
                "task-hours",
                0.0,
                (),
                "in production the stores send their readings themselves; their Firehose ingest is priced above",
            )
        )
        line("Glue", "Data Catalog", 1, "month", "glue_catalog", book["glue_catalog"].note)
        line("SNS", "the alarms' topic", 1, "month", "sns_email")
        line("KMS", "the alarm topic's key", 1, "key-month", "kms_key", book["kms_key"].note)
        line("Prefect", "Prefect Cloud or a self-hosted server", 1, "month", "prefect", book["prefect"].note)

    def assumptions(self) -> list[str]:
        book, cadence = self.book, self.cadence
        assumptions = [
            f"list prices, {book['firehose_ingest'].region}, read {book['firehose_ingest'].read} (transcribed), "
            "free tiers excluded",
            f"a reading per store-product every {cadence.store_data_minutes:g} min (the store-data schedule)",
            f"Athena bytes: {self.case} case"
            + (
                f" (a plan's raw readings at {self.share:.0%} of their worst)"
                if self.case == "typical"
                else " (each query)"
            ),
            f"{ORDERS_PER_PAIR_DAY} dispatch requests a store-product a day (the 100 x 50 scenario), "
            f"{self.w['orders_per_store_day']:g} order a store a day",
            f"plan time scaled linearly from the emulator's measurements: {self.plan_seconds:,.1f} s at this size",
        ]
        if cadence.raw_retention_assumed:
            assumptions.append(f"raw readings kept {ASSUMED_RAW_RETENTION_DAYS} days (assumed: no template parameter)")
        if cadence.ledger_retention_days is None:
            assumptions.append("dispatch ledger kept for good (no retention rule in the template)")
        return assumptions

    def figures(self) -> dict[str, Any]:
        readings = self.readings
        return {
            "pairs": self.pairs,
            "readings_per_month": round(self.pairs * self.store_runs),
            "firehose_records_per_run": readings.records,
            "gzip_bytes_per_reading": round(readings.gzip_bytes_per_reading, 1),
            "json_bytes_per_reading": round(readings.json_bytes / readings.readings, 1),
            "billed_bytes_per_reading": round(readings.billed_bytes / readings.readings, 1),
            "firehose_objects_per_month": round(self.firehose_objects),
            "athena_bytes_per_query": {k: round(max(self.scanned[k], ATHENA_MIN_BYTES)) for k in self.queries_day},
            "plan_seconds": round(self.plan_seconds, 1),
            "planning_memory_mb": self.cadence.planning_memory_mb,
            "dispatch_requests_per_day": round(self.requests_per_day),
            "order_messages_per_day": round(self.messages_day),
            "request_bytes": self.request_bytes,
            "runs_per_day": self.runs,
            "raw_retention_days": self.cadence.raw_retention_days,
        }


# ------------------------------------------------------------------------------------------------ CLI
def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.3g}"


def print_bill(bill: Bill) -> None:
    """The bill as a rich table on stdout, the assumptions under it."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 150)
    table = Table(
        title=f"storeops on AWS: {bill.stores:,} stores x {bill.products:,} products, a month "
        f"({bill.region} list prices read {bill.prices_read})",
        box=box.SIMPLE,
    )
    for name, justify in (("service", "left"), ("item", "left"), ("quantity", "right"), ("unit", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("unit price", justify="right")
    table.add_column("USD a month", justify="right")
    for line in bill.lines:
        table.add_row(
            line.service,
            line.item,
            _quantity(line.quantity),
            line.unit,
            f"${line.unit_price:,.6g}",
            f"{line.usd:,.2f}",
        )
    table.add_section()
    for service, usd in sorted(bill.by_service().items(), key=lambda kv: -kv[1]):
        table.add_row(service, "(total)", "", "", "", f"{usd:,.2f}")
    table.add_section()
    table.add_row("", "total", "", "", "", f"[bold]{bill.total:,.2f}[/bold]")
    console.print(table)
    for assumption in bill.assumptions:
        console.print(f"  - {assumption}")


class CostOptions(CliOptions):
    """The monthly AWS bill of storeops for a chain, by service, at the deployed cadence (prefect.yaml's
    schedules, the template's defaults), from deployments/prices.toml's list prices."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.cost")

    stores: Stores = STORES
    products: Products = PRODUCTS
    months: int = Field(
        12, ge=1, description="Months of history held in what is kept for good (rollups, forecast), for its storage."
    )
    case: Literal["typical", "worst"] = Field(
        "typical",
        description="Athena's bytes: typical (a plan's raw readings on average) or worst (every query at its worst).",
    )


def main(argv: list[str] | None = None) -> int:
    options = CostOptions.parse_or_exit(argv)
    bill = monthly_bill(
        options.stores,
        options.products,
        load_prices(),
        read_cadence(),
        measure_readings(options.stores, options.products),
        measure_request_bytes(),
        months=options.months,
        case=options.case,
    )
    print_bill(bill)
    if options.json_output:
        emit_json(bill.as_dict())
    return 0


if __name__ == "__main__":
    run_cli(main)
