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
        "parameters",
        "retry",
        "s3",
        "service_level",
        "settings",
        "sql",
        "sqs",
    }, "a new top-level module is shared by the apps: add it here and to ARCHITECTURE.md"


# ---- the entry layer: flows -> tasks -> storeops; deployments sets the environment up and runs them


def top_level_imports(path: Path) -> set[str]:
    """The modules a file imports outside an ``if __name__ == "__main__":`` block (function bodies included)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return  # the CLI entry: it may set the environment up (deployments.cli, deployments.environment)
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def defines_a_flow(path: Path) -> bool:
    return any(
        isinstance(node, ast.FunctionDef)
        and any("flow" in ast.unparse(d).split("(")[0].split(".")[-1:] for d in node.decorator_list)
        for node in ast.walk(ast.parse(path.read_text()))
    )


ENTRY = sorted([*ROOT.glob("flows/*.py"), *ROOT.glob("tasks/*.py")])
FLOW_MODULES = sorted(p for p in ROOT.glob("flows/*.py") if defines_a_flow(p))


@pytest.mark.parametrize("path", ENTRY, ids=lambda p: module_name(p))
def test_flows_and_tasks_never_import_deployments(path: Path) -> None:
    """A flow loads its environment (tasks/environment.py); setting it up (emulator, stack) is deployments' step,
    which a flow module's CLI entry may take under ``if __name__ == "__main__":`` (the one exception)."""
    bad = [m for m in top_level_imports(path) if within(m, "deployments") or within(m, "bench")]
    assert not bad, f"{module_name(path)} imports {bad}: only its `if __name__ == '__main__':` block may"


@pytest.mark.parametrize("path", [*ENTRY, *ROOT.glob("deployments/*.py")], ids=lambda p: module_name(p))
def test_no_flow_module_imports_another(path: Path) -> None:
    """Flows share tasks, never each other (the demo and the scenario deployment, in deployments/, compose them)."""
    if path.parent.name != "flows":
        return
    flows = {module_name(p) for p in FLOW_MODULES} - {module_name(path)}
    bad = [m for m in top_level_imports(path) if m in flows]
    assert not bad, f"{module_name(path)} imports the flow modules {bad}: move what they share into tasks/"


def test_every_flow_module_is_found() -> None:
    names = {module_name(p) for p in FLOW_MODULES}
    assert names == {
        "flows.generate",
        "flows.plan",
        "flows.trucks",
        "flows.rollup",
        "flows.forecast",
        "flows.replay_dlq",
        "flows.scenario",
    }
