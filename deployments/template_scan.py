"""Scan the CloudFormation templates with checkov: every finding fixed, or skipped in the template
with a one-line reason (``Metadata.checkov.skip``). Both templates: the main stack's
(``deployments/template.yaml``) and the flows' on ECS (``deployments/flows_template.yaml``).

    python -m deployments.template_scan [--json]

checkov pins its own boto3 and other libraries, so it cannot share the project's environment:
it is installed once (pinned) into an environment of its own under ``<local home>/tools/``,
from the package registry. Exit 1 when a check fails.
"""

from __future__ import annotations

import json
import subprocess
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import SettingsConfigDict

from deployments.stack import TEMPLATE_PATH
from flows.cli import CliOptions
from storeops.cli import emit_json, run_cli
from storeops.exceptions import ConfigurationError
from storeops.settings import load_settings

CHECKOV_VERSION = "3.3.30"
FLOWS_TEMPLATE_PATH = TEMPLATE_PATH.with_name("flows_template.yaml")
TEMPLATES = (TEMPLATE_PATH, FLOWS_TEMPLATE_PATH)


@dataclass
class ScanResult:
    passed: int
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    checkov_version: str = CHECKOV_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "checkov_version": self.checkov_version,
        }


def checkov_executable(tools_home: Path) -> Path:
    """The pinned checkov in its own environment, installed on first use."""
    home = tools_home / f"checkov-{CHECKOV_VERSION}"
    executable = home / "bin" / "checkov"
    if executable.exists():
        return executable
    venv.create(home, with_pip=True, clear=True)
    install = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0 or not executable.exists():
        last = (install.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigurationError(
            f"cannot install checkov {CHECKOV_VERSION} into {home}: {last}",
            hint="check access to the package registry (pip), then run again",
        )
    return executable


def _finding(check: dict[str, Any]) -> dict[str, str]:
    suppress = check.get("check_result", {}).get("suppress_comment", "")
    return {
        "id": str(check.get("check_id")),
        "resource": str(check.get("resource")),
        "name": str(check.get("check_name")),
        **({"reason": str(suppress)} if suppress else {}),
    }


def scan(tools_home: Path, template: Path = TEMPLATE_PATH) -> ScanResult:
    """checkov's findings for the template: passed count, failed and skipped checks."""
    command = [
        str(checkov_executable(tools_home)),
        "--file",
        str(template),
        "--framework",
        "cloudformation",
        "--skip-download",  # offline: no guideline download from the vendor's API
        "--output",
        "json",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigurationError(f"checkov printed no report (exit {completed.returncode}): {last}") from None
    results = report.get("results", {})
    return ScanResult(
        passed=len(results.get("passed_checks", [])),
        failed=[_finding(c) for c in results.get("failed_checks", [])],
        skipped=[_finding(c) for c in results.get("skipped_checks", [])],
        checkov_version=str(report.get("summary", {}).get("checkov_version", CHECKOV_VERSION)),
    )


def scan_all(tools_home: Path, templates: tuple[Path, ...] = TEMPLATES) -> dict[str, ScanResult]:
    """checkov's findings for each template, by file name."""
    return {template.name: scan(tools_home, template) for template in templates}


class TemplateScanOptions(CliOptions):
    """Scan deployments/template.yaml and deployments/flows_template.yaml with checkov (installed pinned, in its
    own environment). Exit 1 when a check fails."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.template_scan")


def main(argv: list[str] | None = None) -> int:
    args = TemplateScanOptions.parse_or_exit(argv)
    settings = load_settings()
    results = scan_all(settings.local_home / "tools")
    for name, result in results.items():
        print(
            f"{name}: checkov {result.checkov_version}: {result.passed} passed, {len(result.failed)} failed, "
            f"{len(result.skipped)} skipped with a reason"
        )
        for finding in result.failed:
            print(f"  FAILED  {finding['id']}  {finding['resource']}: {finding['name']}")
        for finding in result.skipped:
            print(f"  skipped {finding['id']}  {finding['resource']}: {finding.get('reason', '(no reason)')}")
    if args.json_output:
        emit_json({"templates": {name: result.as_dict() for name, result in results.items()}})
    return 1 if any(result.failed for result in results.values()) else 0


if __name__ == "__main__":
    run_cli(main)
