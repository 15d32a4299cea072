"""Browser check of the Prefect UI as an operator sees it (headless Chromium through Playwright).

    python -m bench.ui_check [--port 4250] [--chromium /usr/bin/chromium] [--screenshots DIR] [--json]

Brings up the local Prefect server (``deployments.prefect_local up``; one already up is used as
it is), then checks: the plan-shortages Run form shows each parameter's help and refuses
``lookback_hours = -5`` before any run exists; the truck run is one long Running run; its
``truck-summary`` artifact is live (republished while it runs). Screenshots go to
``--screenshots`` (default ``.localaws/ui-check``). Stops what it started.

Needs the browser driver and a Chromium, neither of which the tests install:
``pip install -e ".[ui]"`` and ``apt install chromium`` (Debian's package; no download from the
internet). Not part of CI (it takes about two minutes); run it after changing flows' signatures,
prefect.yaml or the artifacts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import run_benchmark
from deployments.prefect_local import api_post, local_prefect_home, running_api_url
from storeops.cli import OneLineArgumentParser, emit_json, run_cli
from storeops.exceptions import ConfigurationError, StoreOpsError
from storeops.settings import LOOPBACK, load_settings, project_root

if TYPE_CHECKING:
    from playwright.sync_api import Page

DURATION = (
    " The default run takes about 2 minutes (most of it bringing up the Prefect server and the truck run);"
    " an already running server (`python -m deployments.prefect_local up`) makes it shorter."
)


Passed = Callable[[str, str], None]  # records a check that passed: its name and what it saw


class CheckFailed(StoreOpsError):
    """The UI did not show what an operator needs."""


def _api(api_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return api_post(api_url, path, body)


def _deployment(api_url: str, name: str) -> dict[str, Any]:
    return next(d for d in _api(api_url, "/deployments/filter") if d["name"] == name)


def _runs(api_url: str, deployment_id: str) -> list[dict[str, Any]]:
    return list(_api(api_url, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 100}))


def _wait(what: str, predicate: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(1)
    raise CheckFailed(f"{what}: not seen within {seconds:.0f} s")


def check(ui: str, api_url: str, chromium: str, shots: Path) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []

    def passed(name: str, detail: str) -> None:
        results.append({"check": name, "ok": True, "detail": detail})
        print(f"  ok    {name:<34} {detail}", flush=True)

    plan = _deployment(api_url, "plan-shortages")
    runs_before = len(_runs(api_url, plan["id"]))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        _check_run_form(page, ui, api_url, shots, plan, runs_before, passed)
        run = _check_one_running_truck_run(page, ui, api_url, shots, passed)
        _check_live_truck_summary(page, ui, api_url, shots, run, passed)
        browser.close()
    return results


def _check_run_form(
    page: Page, ui: str, api_url: str, shots: Path, plan: dict[str, Any], runs_before: int, passed: Passed
) -> None:
    """The plan deployment's Run form shows the parameters' help and refuses lookback_hours -5 (no run made)."""
    page.goto(f"{ui}/deployments/deployment/{plan['id']}/run", wait_until="networkidle")
    page.get_by_text("Window of readings and sales, in hours").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "plan-run-form.png"), full_page=True)
    passed("run form shows parameter help", "lookback_hours: 'Window of readings and sales, in hours ...'")

    field = page.locator("xpath=//*[starts-with(normalize-space(text()), 'lookback_hours')]").first.locator(
        "xpath=ancestor::div[.//input][1]//input"
    )
    field.fill("-5")
    page.get_by_role("button", name="Submit").first.click()
    page.get_by_text("Validation failed for field 'lookback_hours'").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "plan-run-form-refused.png"), full_page=True)
    if len(_runs(api_url, plan["id"])) != runs_before:
        raise CheckFailed("the Run form created a run with lookback_hours = -5")
    passed("run form refuses lookback_hours -5", "'Validation failed for field lookback_hours'; no run created")


def _check_one_running_truck_run(page: Page, ui: str, api_url: str, shots: Path, passed: Passed) -> dict[str, Any]:
    """Exactly one truck run is Running, and its page shows it; that run."""
    trucks = _deployment(api_url, "truck-dispatch")
    running = _wait(
        "a Running truck run",
        lambda: [r for r in _runs(api_url, trucks["id"]) if r["state_type"] == "RUNNING"],
        120,
    )
    if len(running) != 1:
        raise CheckFailed(f"{len(running)} truck runs Running, expected exactly one")
    run: dict[str, Any] = running[0]
    page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_text(run["name"]).first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "truck-run.png"), full_page=True)
    passed("one Running truck run", f"{run['name']}")
    return run


def _check_live_truck_summary(
    page: Page, ui: str, api_url: str, shots: Path, run: dict[str, Any], passed: Passed
) -> None:
    """The running truck run has published its truck-summary artifact, and its newest version shows."""
    summary = _wait(
        "the truck-summary artifact of the running run",
        lambda: [
            a
            for a in _api(api_url, "/artifacts/filter", {"artifacts": {"key": {"any_": ["truck-summary"]}}})
            if a["flow_run_id"] == run["id"]
        ],
        60,
    )
    page.goto(f"{ui}/artifacts/key/truck-summary", wait_until="networkidle")
    page.get_by_text("What the truck run has done so far (running, updated").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "truck-summary-versions.png"), full_page=True)
    newest = max(summary, key=lambda a: str(a["created"]))
    page.goto(f"{ui}/artifacts/artifact/{newest['id']}", wait_until="networkidle")
    page.get_by_text("Truck dispatch run").first.wait_for(timeout=30_000)
    page.get_by_text("messages received").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "truck-summary.png"), full_page=True)
    latest = newest["description"]
    passed("truck-summary is live", f"{len(summary)} version(s) from the running run; '{latest}'")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.ui_check", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--port", type=int, default=4250, help="port of the Prefect server it starts (4250)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium to drive (/usr/bin/chromium)")
    parser.add_argument("--screenshots", type=Path, help="where screenshots go (.localaws/ui-check)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        raise ConfigurationError(
            f"no Chromium at {args.chromium}", hint="apt install chromium, or pass --chromium PATH"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise ConfigurationError("Playwright is not installed", hint='pip install -e ".[ui]"') from None
    settings = load_settings()
    shots = args.screenshots or settings.local_home / "ui-check"
    shots.mkdir(parents=True, exist_ok=True)
    api_url = running_api_url(settings.local_home)
    started_here = api_url is None
    port = args.port if api_url is None else int(api_url.rsplit(":", 1)[1].split("/")[0])
    # `up` is idempotent: on a server that is already up it starts only what is missing (a worker).
    print(f"bringing up the local Prefect server on port {port}...", flush=True)
    began = time.monotonic()
    try:  # a failed `up` may have started the server already: `down` runs whatever happens
        up = subprocess.run(
            [sys.executable, "-m", "deployments.prefect_local", "up", "--port", str(port)],
            cwd=project_root(),
            capture_output=True,
            text=True,
            check=False,
        )
        if up.returncode != 0:
            raise CheckFailed(f"prefect_local up failed: {(up.stderr or up.stdout).strip().splitlines()[-1:]}")
        api_url = f"http://{LOOPBACK}:{port}/api"
        results = check(api_url.removesuffix("/api"), api_url, args.chromium, shots)
    finally:
        if started_here:
            subprocess.run(
                [sys.executable, "-m", "deployments.prefect_local", "down", "--port", str(port)],
                cwd=project_root(),
                capture_output=True,
                check=False,
            )
    seconds = round(time.monotonic() - began, 1)
    print(f"UI checks passed: {len(results)} in {seconds} s; screenshots in {shots}")
    if args.json:
        home = str(local_prefect_home(settings.local_home))
        emit_json({"checks": results, "seconds": seconds, "screenshots": str(shots), "home": home})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(lambda: run_cli(main)))
