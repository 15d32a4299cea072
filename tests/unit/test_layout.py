"""The tree's rules: three apps that never import each other, a shared core that imports no app,
and a pure package (no Prefect) that the Lambda runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

APPS = ("storeops.stores", "storeops.planning", "storeops.dispatch")
ORCHESTRATION = ("prefect", "flows", "tasks", "deployments", "bench", "tests")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


CORE = sorted(ROOT.glob("storeops/**/*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: module_name(p))
def test_the_core_package_never_imports_prefect_or_the_orchestration_layer(path: Path) -> None:
    bad = [m for m in imports_of(path) if any(within(m, top) for top in ORCHESTRATION)]
    assert not bad, f"{module_name(path)} imports {bad}: storeops is what the Lambda runs, keep it pure"


@pytest.mark.parametrize("path", CORE, ids=lambda p: module_name(p))
def test_apps_import_only_themselves_and_the_shared_core(path: Path) -> None:
    name = module_name(path)
    own = next((app for app in APPS if within(name, app)), None)
    imported_apps = {app for m in imports_of(path) for app in APPS if within(m, app)}
    allowed = {own} if own else set()
    assert imported_apps <= allowed, f"{name} imports {sorted(imported_apps - allowed)}: " + (
        "apps share only the core (storeops/*.py, storeops/contracts)" if own else "the shared core imports no app"
    )


@pytest.mark.parametrize(
    "path",
    [*CORE, *ROOT.glob("flows/*.py"), *ROOT.glob("tasks/*.py"), *ROOT.glob("deployments/*.py")],
    ids=lambda p: module_name(p),
)
def test_production_code_never_uses_the_samples(path: Path) -> None:
    if module_name(path) == "storeops.contracts.samples":
        return
    assert "storeops.contracts.samples" not in imports_of(path)


def test_every_app_is_a_package_and_the_top_level_holds_only_shared_modules() -> None:
    for app in APPS:
        assert (ROOT / app.replace(".", "/") / "__init__.py").exists(), app
    top = {p.stem for p in (ROOT / "storeops").glob("*.py")} - {"__init__"}
    assert top == {
        "athena",
        "aws",
        "aws_errors",
        "calendar",
        "cli",
        "clock",
        "costs",
        "directory",
        "exceptions",
        "faults",
        "ledger",
        "metrics",
        "retry",
        "s3",
        "service_level",
        "settings",
        "sql",
        "sqs",
    }, "a new top-level module is shared by the apps: add it here and to ARCHITECTURE.md"
