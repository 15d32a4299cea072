"""Every benchmark is a CLI a new user can read first: ``--help`` says how long its default run takes and
offers ``--json``; bad input is a one-line usage error (exit 2)."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import ROOT

BENCHMARKS = sorted(
    f"bench.{path.stem}" for path in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__":' in path.read_text()
)


def test_every_benchmark_module_is_listed() -> None:
    assert len(BENCHMARKS) >= 13, BENCHMARKS  # a glob that found nothing would pass everything below


@pytest.mark.parametrize("module", BENCHMARKS)
def test_help_says_how_long_the_default_run_takes_and_offers_json(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"python -m {module}" in text
    assert "default run takes about" in text, text
    assert "--json" in text


@pytest.mark.parametrize("module", BENCHMARKS)
def test_an_unknown_option_is_one_line_and_exits_2(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--no-such-option"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines  # the reason and where to look, no usage block
    assert "--no-such-option" in lines[0]
    assert f"python -m {module} --help" in lines[0]
