"""Every Athena query of the planning loop stays under the workgroup's default per-query cutoff, with margin, at
the size the README promises, a missed rollup included (storeops/planning/scan_budget.py, ARCHITECTURE.md
"Scale")."""

from __future__ import annotations

import pytest
from cfnlint.decode import decode

from storeops.planning.scan_budget import ChainSize, scan_bytes
from tests.conftest import ROOT

PROMISED = ChainSize(stores=2_000, products=1_000, reading_minutes=1.0)  # the deployed cadence
MARGIN = 0.8  # at most this share of the cutoff


def default_cutoff() -> int:
    template, errors = decode(str(ROOT / "deployments" / "template.yaml"))
    assert not errors
    assert template is not None
    return int(template["Parameters"]["BytesScannedCutoffPerQuery"]["Default"])


def test_the_default_cutoff_is_athena_s_10_gib() -> None:
    assert default_cutoff() == 10 * 2**30


@pytest.mark.parametrize("query", ["hourly_rollup", "daily_rollup", "forecast", "plan"])
def test_every_query_at_the_promised_size_stays_under_the_cutoff_with_margin(query: str) -> None:
    scanned = scan_bytes(PROMISED)[query]
    assert scanned <= MARGIN * default_cutoff(), f"{query}: {scanned / 1e9:.2f} GB of {default_cutoff() / 1e9:.2f}"


def test_a_plan_is_its_parts_and_the_raw_readings_are_most_of_it() -> None:
    estimate = scan_bytes(PROMISED)
    parts = sum(v for k, v in estimate.items() if k.startswith("plan_"))
    assert estimate["plan"] == pytest.approx(parts)
    queries = {name: value for name, value in estimate.items() if not name.startswith("plan_")}
    assert max(queries, key=queries.__getitem__) == "plan"  # the largest query at the promised size
    assert estimate["plan_raw"] > 0.8 * estimate["plan"]


def test_bytes_grow_with_the_pairs_and_the_reading_cadence() -> None:
    double = scan_bytes(ChainSize(stores=4_000, products=1_000, reading_minutes=1.0))
    sparse = scan_bytes(ChainSize(stores=2_000, products=1_000, reading_minutes=15.0))
    base = scan_bytes(PROMISED)
    assert all(double[k] == pytest.approx(2 * base[k]) for k in base)
    assert sparse["hourly_rollup"] == pytest.approx(base["hourly_rollup"] / 15)
    assert sparse["forecast"] == base["forecast"]  # one row a pair-day, whatever the cadence
