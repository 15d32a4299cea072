"""The monthly bill (deployments/cost.py): its prices and cadence come from their one definition, its lines add up,
and they scale with the chain the way the code's work does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployments.cost import (
    PLAN,
    PRICES_PATH,
    ROLLUP,
    STORE_DATA,
    Bill,
    Cadence,
    load_prices,
    main,
    measure_readings,
    measure_request_bytes,
    monthly_bill,
    read_cadence,
    runs_per_day,
)
from storeops.athena import ATHENA_USD_PER_TB
from storeops.exceptions import ConfigurationError
from storeops.planning.scan_budget import ChainSize, athena_usd_per_day
from storeops.stores.firehose import BILLING_INCREMENT


@pytest.fixture(scope="module")
def cadence() -> Cadence:
    return read_cadence()


def bill_for(stores: int, products: int, cadence: Cadence, **options: object) -> Bill:
    return monthly_bill(
        stores,
        products,
        load_prices(),
        cadence,
        measure_readings(stores, products),
        measure_request_bytes(),
        **options,  # type: ignore[arg-type]
    )


def line(bill: Bill, item: str) -> float:
    return next(x.usd for x in bill.lines if x.item == item)


def test_the_cadence_is_read_from_prefect_yaml_and_the_template(cadence: Cadence) -> None:
    assert cadence.runs_per_day == {STORE_DATA: 1440, PLAN: 96, ROLLUP: 24, "forecast-daily": 1}
    assert cadence.store_data_minutes == 1
    assert cadence.firehose_buffer_seconds == 60
    assert cadence.firehose_buffer_mib == 64
    assert cadence.planning_memory_mb <= 3008  # a new account's limit
    assert cadence.athena_results_days == 7


def test_cron_counting() -> None:
    assert runs_per_day("12 * * * *") == 24
    assert runs_per_day("40 0 * * 1-5") == pytest.approx(5 / 7)


def test_every_price_used_is_in_the_prices_file_with_its_source(cadence: Cadence) -> None:
    book = load_prices()
    bill = bill_for(100, 50, cadence)
    used = {name for x in bill.lines for name in x.prices}
    assert used <= set(book.prices)
    for name in used:
        price = book[name]
        assert price.source.startswith("https://"), name
        assert price.unit, name
        assert (price.region, price.read) == ("us-east-1", "2026-12"), name
    assert book["athena_scan"].usd == ATHENA_USD_PER_TB  # one definition: the constant the Lambda prices with
    assert book["athena_scan"].defined_in == "storeops.athena.ATHENA_USD_PER_TB"


def test_a_price_without_a_source_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "prices.toml"
    broken.write_text(PRICES_PATH.read_text().replace('source = "https://aws.amazon.com/sqs/pricing/"', ""))
    with pytest.raises(ConfigurationError, match=r"sqs_requests .* lacks source"):
        load_prices(broken)


def test_the_total_is_the_sum_of_the_lines(cadence: Cadence) -> None:
    bill = bill_for(100, 50, cadence)
    assert bill.total == pytest.approx(sum(x.quantity * x.unit_price for x in bill.lines))
    assert sum(bill.by_service().values()) == pytest.approx(bill.total)
    assert {"Firehose", "S3", "Athena", "Lambda", "SQS", "DynamoDB", "CloudWatch", "ECS Fargate"} <= set(
        bill.by_service()
    )


def test_doubling_the_stores_doubles_what_scales_with_the_readings(cadence: Cadence) -> None:
    one, two = bill_for(100, 50, cadence), bill_for(200, 50, cadence)
    for item in (
        "ingestion (Direct PUT, 5 KB rounding per record)",
        "storage: raw readings",
        "claims: write request units",
    ):
        assert line(two, item) / line(one, item) == pytest.approx(2, rel=0.1), item
    assert line(two, "worker (0.25 vCPU, 0.5 GB)") == line(one, "worker (0.25 vCPU, 0.5 GB)")  # always on


def test_firehose_records_are_large_enough_that_the_5_kb_rounding_costs_little() -> None:
    sample = measure_readings(100, 50)
    assert sample.readings == 5_000
    assert 30 < sample.gzip_bytes_per_reading < 80  # ARCHITECTURE.md "Scale": 49 B
    assert sample.billed_bytes <= sample.payload_bytes + sample.records * BILLING_INCREMENT
    assert sample.billed_bytes / sample.payload_bytes < 1.1


def test_the_typical_athena_day_agrees_with_scan_budget(cadence: Cadence) -> None:
    bill = bill_for(2000, 1000, cadence)
    athena_month = bill.by_service()["Athena"]
    expected = athena_usd_per_day(ChainSize(2000, 1000, 1.0), plans_per_day=96) * load_prices().days_per_month
    assert athena_month == pytest.approx(expected, rel=0.01)
    worst = bill_for(2000, 1000, cadence, case="worst").by_service()["Athena"]
    assert worst > athena_month


def test_cli_prints_the_bill_and_one_json_object_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stores", "100", "--products", "50", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    payload = json.loads(out[-1])
    assert (payload["stores"], payload["products"]) == (100, 50)
    assert payload["total_usd"] == pytest.approx(sum(x["usd"] for x in payload["lines"]), abs=0.05)
    assert {"service", "item", "quantity", "unit", "unit_price", "usd"} <= set(payload["lines"][0])
    assert any("total" in row for row in out[:-1])


@pytest.mark.parametrize("argv", [["--stores", "0"], ["--products", "-3"], ["--stores", "many"], ["--case", "best"]])
def test_bad_input_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("python -m deployments.cost: error:")
