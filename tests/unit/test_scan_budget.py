"""Every Athena query of the planning loop stays under the workgroup's per-query cutoff, with margin, at every size
the README promises, a missed rollup included: at the template's default cutoff up to 2,000 x 1,000, at the cutoff
``deployments.stack deploy --stores --products`` sets above it (storeops/planning/scan_budget.py, ARCHITECTURE.md
"Scale")."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import decode

from deployments import stack
from storeops.planning.scan_budget import (
    CUTOFF_MARGIN,
    DEFAULT_CUTOFF_BYTES,
    QUERIES,
    ChainSize,
    athena_usd_per_day,
    cutoff_for,
    scan_bytes,
)
from tests.conftest import ROOT

SCENARIO = ChainSize(stores=100, products=50, reading_minutes=1.0)
PROMISED = ChainSize(stores=2_000, products=1_000, reading_minutes=1.0)  # the deployed cadence
LARGEST = ChainSize(stores=2_000, products=30_000, reading_minutes=15.0)  # ARCHITECTURE.md's largest chain


def default_cutoff() -> int:
    template, errors = decode(str(ROOT / "deployments" / "template.yaml"))
    assert not errors
    assert template is not None
    return int(template["Parameters"]["BytesScannedCutoffPerQuery"]["Default"])


def test_the_default_cutoff_is_athena_s_10_gib() -> None:
    assert default_cutoff() == DEFAULT_CUTOFF_BYTES == 10 * 2**30


@pytest.mark.parametrize("query", QUERIES)
def test_every_query_at_the_promised_size_stays_under_the_default_cutoff_with_margin(query: str) -> None:
    scanned = scan_bytes(PROMISED)[query]
    assert scanned <= CUTOFF_MARGIN * default_cutoff(), (
        f"{query}: {scanned / 1e9:.2f} GB of {default_cutoff() / 1e9:.2f}"
    )
    assert cutoff_for(PROMISED) == cutoff_for(SCENARIO) == default_cutoff()  # a stack sized for it keeps the default


@pytest.mark.parametrize("size", [SCENARIO, PROMISED, LARGEST], ids=["100x50", "2000x1000", "2000x30000"])
@pytest.mark.parametrize("query", QUERIES)
def test_every_query_stays_under_the_cutoff_its_chain_is_deployed_with(size: ChainSize, query: str) -> None:
    cutoff = cutoff_for(size)
    assert scan_bytes(size)[query] <= CUTOFF_MARGIN * cutoff
    assert cutoff % 2**30 == 0


def test_a_larger_chain_raises_the_cutoff_only_as_far_as_its_worst_query_needs() -> None:
    cutoff = cutoff_for(LARGEST)
    worst = max(scan_bytes(LARGEST)[q] for q in QUERIES)
    assert cutoff > default_cutoff()
    assert cutoff - 2**30 < worst / CUTOFF_MARGIN <= cutoff  # the smallest whole GiB with the margin
    assert scan_bytes(LARGEST)["forecast"] > default_cutoff()  # why: the forecast alone is over the default
    assert cutoff_for(ChainSize(4_000, 30_000, 15.0)) > cutoff


def test_a_plan_is_its_parts_and_the_raw_readings_are_most_of_it() -> None:
    estimate = scan_bytes(PROMISED)
    parts = sum(v for k, v in estimate.items() if k.startswith("plan_"))
    assert estimate["plan"] == pytest.approx(parts)
    assert max(QUERIES, key=estimate.__getitem__) == "plan"  # the largest query at the promised size
    assert estimate["plan_raw"] > 0.8 * estimate["plan"]


def test_bytes_grow_with_the_pairs_and_the_reading_cadence() -> None:
    double = scan_bytes(ChainSize(stores=4_000, products=1_000, reading_minutes=1.0))
    sparse = scan_bytes(ChainSize(stores=2_000, products=1_000, reading_minutes=15.0))
    base = scan_bytes(PROMISED)
    assert all(double[k] == pytest.approx(2 * base[k]) for k in base)
    assert sparse["hourly_rollup"] == pytest.approx(base["hourly_rollup"] / 15)
    assert sparse["forecast"] == base["forecast"]  # one row a pair-day, whatever the cadence
    assert athena_usd_per_day(LARGEST, plans_per_day=96) > athena_usd_per_day(PROMISED, plans_per_day=96) > 0


def test_deploy_sized_for_a_chain_sets_the_cutoff_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed: dict[str, Any] = {}

    def fake_deploy(settings: Any, clients: Any, progress: Any, overrides: dict[str, str]) -> stack.DeployResult:
        deployed.update(overrides)
        return stack.DeployResult(settings.stack_name, "updated")

    monkeypatch.setattr(stack, "deploy", fake_deploy)
    monkeypatch.setattr(stack.AwsClients, "from_settings", classmethod(lambda cls, settings: object()))
    argv = ["deploy", "--target", "aws", "--stores", "2000", "--products", "30000", "--reading-minutes", "15"]
    assert stack.main(argv) == 0
    assert deployed == {"BytesScannedCutoffPerQuery": str(cutoff_for(LARGEST))}
    assert "the worst query, daily_rollup" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["deploy", "--stores", "2000"], "--stores and --products go together"),
        (["outputs", "--stores", "2", "--products", "3"], "apply to deploy only"),
        (["deploy", "--stores", "0", "--products", "3"], "must be at least 1"),
        (
            ["deploy", "--stores", "2", "--products", "3", "--parameter", "BytesScannedCutoffPerQuery=5"],
            "give one or the other",
        ),
    ],
)
def test_a_sizing_that_cannot_be_used_is_a_usage_error(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        stack.main(argv)
    assert exited.value.code == 2
    assert reason in capsys.readouterr().err
