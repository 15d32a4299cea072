"""The quality gates run with the tests: ruff (lint and format) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_ruff_lint_and_format_are_clean() -> None:
    lint = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert fmt.returncode == 0, fmt.stdout


def test_mypy_is_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]


def test_ci_installs_and_tests_exactly_as_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ('pip install -e ".[local,test]"', "python -m pytest"):
        assert command in readme, command
        assert command in ci, command


def test_the_makefile_offers_the_everyday_targets_and_tests_as_ci_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipes: dict[str, list[str]] = {}
    target = ""
    for line in makefile.splitlines():
        if line and not line[0].isspace() and ":" in line and "=" not in line.split(":")[0]:
            target = line.split(":")[0].strip()
            recipes[target] = []
        elif line.startswith("\t") and target:
            recipes[target].append(line.strip())
    for name in ("install", "lint", "typecheck", "test-fast", "test", "bench"):
        assert recipes.get(name), f"make {name} is missing"
    assert recipes["test"] == ["$(PYTHON) -m pytest"]  # exactly what .ci/run runs
    # fewer examples only, on every core (pytest-xdist)
    assert recipes["test-fast"] == ["STOREOPS_TEST_PROFILE=fast $(PYTHON) -m pytest tests/unit -n auto"]


def test_every_benchmark_says_in_its_help_how_long_its_default_run_takes() -> None:
    for path in sorted((ROOT / "bench").glob("*.py")):
        source = path.read_text()
        if "def main(" in source:
            assert "default run takes about" in source, f"{path.name}: say how long the default run takes (--help)"
            assert "run_benchmark(" in source, f"{path.name}: run main through bench.harness.run_benchmark"
