"""Every query reads each table once on Athena.

Trino (Athena engine v3) inlines every reference to a WITH query, so a CTE referenced twice
runs twice and a table read by two CTEs is scanned twice: twice the bytes billed, and two
reads that can see different S3 contents while Firehose delivers. These checks parse the
rendered queries with sqlglot's Trino dialect.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlglot
from sqlglot import exp

from storeops.sql import load_query
from tests.conftest import ROOT

QUERIES = sorted(p.stem for p in (ROOT / "sql").glob("*.sql"))
IDENTIFIERS = {
    "inventory_table": "inventory_readings",
    "ledger_table": "dispatch_ledger",
    "rollup_table": "inventory_hourly",
    "planogram_table": "planogram",
    "promotions_table": "promotions",
    "products_table": "products",
    "daily_table": "inventory_daily",
    "forecast_table": "demand_forecast",
}
# What a retailer's own systems hold; the simulator's record (simulator/) has no table at all.
# The daily rollup and the forecast are derived from them (storeops/planning/forecast.py).
RETAILER_TABLES = {
    "inventory_readings",
    "inventory_hourly",
    "inventory_daily",
    "demand_forecast",
    "dispatch_ledger",
    "planogram",
    "promotions",
    "products",
}


def scan_problems(sql: str) -> list[str]:
    """Why ``sql`` would read a table more than once on Trino (empty if it reads each once)."""
    tree = sqlglot.parse_one(sql, read="trino")
    ctes = {cte.alias: cte for cte in tree.find_all(exp.CTE)}
    references = Counter(table.name for table in tree.find_all(exp.Table) if table.name in ctes)
    problems = [f"CTE {name} is referenced {references[name]} times" for name in ctes if references[name] != 1]
    readers: dict[str, list[str]] = {}
    for table in tree.find_all(exp.Table):
        if table.name in ctes:
            continue
        cte = table.find_ancestor(exp.CTE)
        readers.setdefault(table.name, []).append(cte.alias if cte is not None else "the final select")
    problems += [f"table {t} is read {len(r)} times (by {', '.join(r)})" for t, r in readers.items() if len(r) != 1]
    problems += [f"table {t} is read outside a CTE" for t, r in readers.items() if r == ["the final select"]]
    return problems


@pytest.mark.parametrize("name", QUERIES)
def test_each_table_is_read_by_one_cte_that_is_referenced_once(name: str) -> None:
    sql = load_query(name, **IDENTIFIERS)
    assert scan_problems(sql) == []


def test_the_planning_query_reads_the_readings_the_rollup_the_ledger_the_planogram_and_the_promotions() -> None:
    tree = sqlglot.parse_one(load_query("shortages", **IDENTIFIERS), read="trino")
    assert {t.name for t in tree.find_all(exp.Table)} >= set(IDENTIFIERS.values()) - {
        "products",
        "inventory_daily",
        "demand_forecast",
    }


def test_the_replenishment_query_joins_the_forecast_the_planogram_the_products_and_the_ledger() -> None:
    tree = sqlglot.parse_one(load_query("replenishment", **IDENTIFIERS), read="trino")
    tables = {t.name for t in tree.find_all(exp.Table)}
    assert tables >= {"inventory_readings", "inventory_hourly", "dispatch_ledger", "planogram", "products"}
    assert "demand_forecast" in tables
    assert "inventory_daily" not in tables


@pytest.mark.parametrize("name", QUERIES)
def test_every_query_reads_only_what_a_retailers_systems_hold(name: str) -> None:
    sql = load_query(name, **IDENTIFIERS)
    tree = sqlglot.parse_one(sql, read="trino")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    assert {t.name for t in tree.find_all(exp.Table) if t.name not in ctes} <= RETAILER_TABLES


def _reader(sql: str, table: str) -> str:
    (found,) = [t for t in sqlglot.parse_one(sql, read="trino").find_all(exp.Table) if t.name == table]
    cte = found.find_ancestor(exp.CTE)
    assert cte is not None
    return str(cte.alias)


def test_the_planning_query_reads_the_rollup_and_the_raw_readings_in_one_cte_each_then_unions_them() -> None:
    sql = load_query("shortages", **IDENTIFIERS)
    assert scan_problems(sql) == []
    assert _reader(sql, "inventory_hourly") == "rollup_hours"
    assert _reader(sql, "inventory_readings") == "raw_readings"
    tree = sqlglot.parse_one(sql, read="trino")
    (union,) = [c for c in tree.find_all(exp.CTE) if c.alias == "readings"]
    assert isinstance(union.this, exp.Union)
    assert {t.name for t in union.this.find_all(exp.Table)} == {"rollup_hours", "raw_readings"}


def test_the_rollup_query_reads_the_raw_table_once() -> None:
    sql = load_query("rollup_hour", inventory_table="inventory_readings")
    assert scan_problems(sql) == []
    assert _reader(sql, "inventory_readings") == "partition_readings"


def test_the_check_catches_a_second_read() -> None:
    twice = """
        with a as (select store_id from inventory_readings),
             b as (select store_id from a),
             c as (select store_id from inventory_readings)
        select * from b join a using (store_id) join c using (store_id)
    """
    problems = scan_problems(twice)
    assert "CTE a is referenced 2 times" in problems
    assert any(p.startswith("table inventory_readings is read 2 times") for p in problems)
